"""The boot paths the statistics and inflate suites run on, and how to boot each.

A path is firmware or not (OVMF + build/ballast.efi, or PVH: qemu -kernel
build/ballast.elf), a machine, and the virtio transport the machine gives the
balloon: virtio-pci on q35 and pc, virtio-mmio on microvm. Tests ask for the
balloon device by its options only (`device_opts`) and get the right QEMU device
for the path, always with id=balloon0 so the QOM path is the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple


@dataclass(frozen=True)
class BootPath:
    boot: str                 # "efi" or "pvh"
    machine: str
    mmio: bool = False        # virtio-balloon-device on virtio-mmio, not virtio-balloon-pci
    extra_args: Tuple[str, ...] = ()
    transport: str = "pci-modern"  # what the guest logs as its transport
    packed: bool = False      # packed=on: the device offers packed rings, the guest takes them

    @property
    def qom_type(self) -> str:
        """The balloon's QEMU device type, as qom-get ... type reports it."""
        return "virtio-balloon-device" if self.mmio else "virtio-balloon-pci"

    @property
    def rings(self) -> str:
        """What the guest's up line says of its rings."""
        return "packed" if self.packed else "split"

    def device(self, opts: str = "") -> Tuple[str, str]:
        opts = ",".join(o for o in ("packed=on" if self.packed else "", opts) if o)
        return ("-device", f"{self.qom_type},id=balloon0" + (f",{opts}" if opts else ""))

    def vm_kwargs(self, device_opts: str = "", devices: Sequence[str] = (), **kwargs) -> Dict:
        """Keyword arguments for BallastVM: this path's boot, machine and balloon,
        then any further devices."""
        return dict(boot=self.boot, machine=self.machine,
                    devices=(*self.device(device_opts), *devices),
                    extra_args=(*self.extra_args, *kwargs.pop("extra_args", ())), **kwargs)


# acpi=off: only then does QEMU 7.2's microvm put virtio_mmio.device= on the kernel
# command line (with ACPI it describes the slots in a DSDT ballast does not read).
MICROVM = "microvm,acpi=off"

BOOT_PATHS: Dict[str, BootPath] = {
    "efi-q35": BootPath("efi", "q35"),
    "pvh-q35": BootPath("pvh", "q35"),
    "pvh-pc": BootPath("pvh", "pc"),
    # virtio-mmio version 1 (legacy) is QEMU 7.2's default on microvm.
    "pvh-microvm": BootPath("pvh", MICROVM, mmio=True, transport="mmio-legacy"),
}

# virtio-mmio version 2, which QEMU 7.2 gives only when asked.
MICROVM_MMIO_MODERN = BootPath("pvh", MICROVM, mmio=True, transport="mmio-modern",
                               extra_args=("-global", "virtio-mmio.force-legacy=false"))

# Packed rings on every transport that can have them: virtio-pci modern (q35, pc)
# and modern virtio-mmio (microvm).
PACKED_PATHS: Dict[str, BootPath] = {
    "pvh-q35-packed": BootPath("pvh", "q35", packed=True),
    "pvh-pc-packed": BootPath("pvh", "pc", packed=True),
    "pvh-microvm-packed": BootPath("pvh", MICROVM, mmio=True, transport="mmio-modern", packed=True,
                                   extra_args=("-global", "virtio-mmio.force-legacy=false")),
}
# The stats and inflate suites run on every boot path and with packed rings.
RING_PATHS: Dict[str, BootPath] = {**BOOT_PATHS, **PACKED_PATHS}

# Where the boot path does not matter: no firmware, and the PCI machine most tests
# were written for.
FASTEST = BOOT_PATHS["pvh-q35"]

"""The same kernel on every boot path: OVMF on q35, PVH (qemu -kernel) on q35 and
pc, and PVH on microvm with virtio-mmio, legacy (QEMU 7.2's default) and modern.

Each path: boot to ready with the expected transport, exact statistics for three
consecutive updates, a 64 MiB inflate and deflate with `actual` exact, and the
memory invariants. Where the boot path does not matter, other tests use one path;
these make sure none of the paths is left behind.
"""

import pytest

from ballast_qemu import parse_kv
from balloon_stats import Balloon

MMIO_LEGACY = ("-device", "virtio-balloon-device,id=balloon0")
PATHS = {
    # id: (boot, machine, devices, extra args, transport line)
    "efi-q35": ("efi", "q35", ("-device", "virtio-balloon-pci,id=balloon0"), (), "pci-modern"),
    "pvh-q35": ("pvh", "q35", ("-device", "virtio-balloon-pci,id=balloon0"), (), "pci-modern"),
    "pvh-pc": ("pvh", "pc", ("-device", "virtio-balloon-pci,id=balloon0"), (), "pci-modern"),
    # acpi=off: only then does QEMU 7.2 put virtio_mmio.device= on the command line
    "pvh-microvm-mmio-legacy": ("pvh", "microvm,acpi=off", MMIO_LEGACY, (), "mmio-legacy"),
    "pvh-microvm-mmio-modern": ("pvh", "microvm,acpi=off", MMIO_LEGACY,
                                ("-global", "virtio-mmio.force-legacy=false"), "mmio-modern"),
}
MEMORY = "256M"
BALLOON_BYTES = 64 << 20
PAGE = 4096


def assert_timer_ticks(vm) -> None:
    """The PIT ticks every 10 ms of guest time: over a second of TSC time, `uptime`'s
    tick count moves by about 100. (Both clocks are the guest's; the bounds only
    allow for the two readings not being taken at the same instant.)"""
    first = parse_kv(vm.console("uptime"))
    assert first["tick_ms"] == "10", first

    def a_second_later():
        kv = parse_kv(vm.console("uptime"))
        return kv if int(kv["tsc_ms"]) - int(first["tsc_ms"]) >= 1000 else None
    last = vm.wait_until(a_second_later, 20, "a second of guest time", interval=0.2)
    ms = int(last["tsc_ms"]) - int(first["tsc_ms"])
    ticks = int(last["ticks"]) - int(first["ticks"])
    assert ms / 10 * 0.8 <= ticks <= ms / 10 * 1.2, f"{ticks} timer ticks in {ms} ms of TSC time"


@pytest.mark.parametrize("path", list(PATHS))
def test_boot_path(ballast_vm, path):
    boot, machine, devices, extra, transport = PATHS[path]
    vm = ballast_vm(boot=boot, machine=machine, memory=MEMORY, devices=devices, extra_args=extra)
    vm.wait_ready(timeout=60)
    vm.wait_for_log(rf"ballast: virtio-balloon .*: transport {transport}\b", 1)
    vm.wait_for_log(r"ballast: virtio-balloon .*: interrupts: (INTx|GSI \d+)", 1)

    assert_timer_ticks(vm)

    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    for _ in range(2):
        nxt = balloon.wait_update(update.last_update, 30)
        assert nxt.seq > update.seq
        update = nxt

    ram = int(MEMORY[:-1]) << 20
    qmp = vm.qmp()
    qmp.cmd("balloon", value=ram - BALLOON_BYTES)
    vm.wait_until(lambda: qmp.cmd("query-balloon")["actual"] == ram - BALLOON_BYTES, 60,
                  "the balloon to reach 64 MiB")
    show = parse_kv(vm.console("mem show"))
    assert int(show["balloon_pages"]) * PAGE == BALLOON_BYTES
    assert int(show["managed"]) == int(show["free"]) + int(show["allocated"])
    assert int(show["managed"]) + int(show["offline"]) == int(show["usable"])
    assert int(show["offline"]) == int(show["balloon_pages"])

    qmp.cmd("balloon", value=ram)
    vm.wait_until(lambda: qmp.cmd("query-balloon")["actual"] == ram, 60, "the balloon to empty")
    show = parse_kv(vm.console("mem show"))
    assert int(show["balloon_pages"]) == 0 and int(show["offline"]) == 0
    assert int(show["managed"]) == int(show["usable"])


@pytest.mark.parametrize("machine", ["q35", "pc", "microvm,acpi=off"])
def test_pvh_selftest(ballast_vm, machine):
    devices = MMIO_LEGACY if machine.startswith("microvm") else ("-device", "virtio-balloon-pci,id=balloon0")
    vm = ballast_vm(boot="pvh", machine=machine, cmdline="selftest", devices=devices)
    assert vm.wait_exit(60) == 1  # guest status 0 (pass) through isa-debug-exit
    vm.wait_for_log(r"ballast: booting \(pvh front end\)", 1)
    vm.wait_for_log(r"ballast: selftest: PASS \(0 failed\)", 1)


# The smallest -m each path boots to ready with and answers stats exactly at,
# measured with QEMU 7.2 under TCG: OVMF itself needs 48 MiB (46 MiB stops in the
# firmware); the PVH image runs in 2 MiB (1 MiB is QEMU's floor below the image).
SMALLEST = {
    "efi-q35": ("efi", "q35", "48M", ("-device", "virtio-balloon-pci,id=balloon0")),
    "pvh-q35": ("pvh", "q35", "2M", ("-device", "virtio-balloon-pci,id=balloon0")),
    "pvh-pc": ("pvh", "pc", "2M", ("-device", "virtio-balloon-pci,id=balloon0")),
    "pvh-microvm": ("pvh", "microvm,acpi=off", "2M", MMIO_LEGACY),
}


@pytest.mark.parametrize("path", list(SMALLEST))
def test_smallest_memory(ballast_vm, path):
    boot, machine, memory, devices = SMALLEST[path]
    vm = ballast_vm(boot=boot, machine=machine, memory=memory, devices=devices)
    vm.wait_ready(timeout=60)
    show = parse_kv(vm.console("mem show"))
    assert int(show["managed"]) == int(show["usable"]) == int(show["free"]) + int(show["allocated"])
    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    balloon.wait_update(update.last_update, 30)

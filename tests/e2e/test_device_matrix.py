"""The device-variant matrix: each QEMU balloon option that changes what the device
offers or how memory looks, on the boot path(s) where it matters, with the same checks
everywhere (exact for every variant):

- the guest accepts only features it implements (packed rings whenever offered on a
  modern transport; never indirect descriptors, in-order use or ACCESS_PLATFORM),
  and its "up" line says what was negotiated;
- statistics: three consecutive host updates, each equal to the guest's logged line,
  and the values equal to the memory manager's counters (`mem show`) at rest;
- a balloon target: the guest inflates exactly the pages asked (or, where the memory
  is too small, holds at its reserve and says so), query-balloon's actual agrees, the
  stats show it, and deflating restores every counter;
- the page invariants at every `mem show` read.

ACCESS_PLATFORM (iommu_platform=on) is refused: QEMU keeps FEATURES_OK only if the
driver accepts it, and ballast gives devices guest-physical addresses, so it must not;
the guest says why, marks the device FAILED and keeps running.

The matrix is the host's: every variant runs on every host, and a host whose balloon
has more properties (hosts.py, extra_device_properties: QEMU 10.0's in_order,
ioeventfd and vectors) gets variants for those too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict

import pytest

from ballast_qemu import BallastVM, parse_size
from balloon_stats import STAT_NAMES, Balloon, up_line, up_lines
from boot_paths import BOOT_PATHS, MICROVM_MMIO_MODERN, BootPath
from inflate_helpers import (BOOT_TIMEOUT, PAGE, RESERVE_PAGES, Baseline, Host, chunk_pages, hold_lines,
                             mem_show, settled)
from hosts import HOST
from stats_exact import ballast_view, diff

VIRTIO_F_INDIRECT_DESC, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_PACKED, VIRTIO_F_IN_ORDER = 28, 33, 34, 35
NEVER_ACCEPTED = (1 << VIRTIO_F_ACCESS_PLATFORM) | (1 << VIRTIO_F_INDIRECT_DESC) | (1 << VIRTIO_F_IN_ORDER)
BALLOON_MAX = 64 << 20  # bytes ballooned where the memory allows
VIRTIO_BACKEND = "/machine/peripheral/balloon0/virtio-backend"
STATS_TIMEOUT = 10      # polling every second; TCG on a busy 2-core box


@dataclass(frozen=True)
class Variant:
    path: BootPath
    opts: str = ""
    memory: str = "256M"
    smp: int = 1

    @property
    def options(self) -> Dict[str, str]:
        return dict(o.split("=") for o in self.opts.split(",") if o)

    def on(self, option: str, default: bool) -> bool:
        return self.options.get(option, "on" if default else "off") == "on"


Q35, PC, EFI = BOOT_PATHS["pvh-q35"], BOOT_PATHS["pvh-pc"], BOOT_PATHS["efi-q35"]
VARIANTS = {
    "defaults": Variant(Q35),
    "packed": Variant(Q35, "packed=on"),
    "indirect-off": Variant(Q35, "indirect_desc=off"),
    "event-idx-off": Variant(Q35, "event_idx=off"),
    "page-poison-off": Variant(Q35, "page-poison=off"),
    "deflate-on-oom": Variant(Q35, "deflate-on-oom=on"),
    "free-page-reporting": Variant(Q35, "free-page-reporting=on"),
    "everything": Variant(Q35, "packed=on,indirect_desc=off,deflate-on-oom=on,free-page-reporting=on"),
    "pc-packed": Variant(PC, "packed=on,deflate-on-oom=on,free-page-reporting=on"),
    "efi-packed": Variant(EFI, "packed=on"),
    "legacy-pc": Variant(PC, "disable-modern=on,deflate-on-oom=on"),
    "mmio-modern-packed": Variant(MICROVM_MMIO_MODERN, "packed=on,free-page-reporting=on,deflate-on-oom=on"),
    "mem-2M": Variant(Q35, memory="2M"),
    "mem-4G": Variant(Q35, memory="4G"),
    "efi-mem-48M": Variant(EFI, memory="48M"),
    "efi-mem-4G": Variant(EFI, memory="4G"),
    "smp-2": Variant(Q35, smp=2),
    "smp-4": Variant(Q35, smp=4),
    "efi-smp-4": Variant(EFI, smp=4),
    "microvm-smp-4": Variant(BOOT_PATHS["pvh-microvm"], smp=4),
}
# What only some hosts' balloons have (QEMU 10.0: in_order, ioeventfd, vectors).
HOST_VARIANTS = {
    "in_order": {"in-order": Variant(Q35, "in_order=on"),
                 "mmio-in-order": Variant(MICROVM_MMIO_MODERN, "in_order=on")},
    "ioeventfd": {"ioeventfd-off": Variant(Q35, "ioeventfd=off"), "ioeventfd-on": Variant(Q35, "ioeventfd=on")},
    "vectors": {"vectors-0": Variant(Q35, "vectors=0"), "vectors-1": Variant(Q35, "vectors=1"),
                "vectors-3": Variant(Q35, "vectors=3"), "efi-vectors-1": Variant(EFI, "vectors=1"),
                # an entry for config and each of the four queues (reporting is the fourth)
                "vectors-5-reporting": Variant(Q35, "vectors=5,free-page-reporting=on"),
                "packed-vectors-4": Variant(Q35, "vectors=4,packed=on")},
}
for prop in HOST.profile.extra_device_properties:
    VARIANTS.update(HOST_VARIANTS[prop])


def boot(ballast_vm, v: Variant, device_opts: str) -> BallastVM:
    vm = ballast_vm(memory=v.memory, **v.path.vm_kwargs(device_opts, extra_args=("-smp", str(v.smp))))
    vm.wait_ready(BOOT_TIMEOUT)
    return vm


def negotiated(vm: BallastVM) -> tuple[int, int, Dict[str, str]]:
    up = up_line(vm)
    return int(up["offered"], 16), int(up["accepted"], 16), up


def host_stats_at_rest(vm: BallastVM, bal: Balloon, after_seq: int) -> tuple[int, dict, Dict]:
    """A host update newer than `after_seq`, equal to its guest line, and `mem show`
    read while that buffer was still the latest (so both describe the same moment)."""
    def fresh():
        seq, host = bal.settled()
        if seq <= after_seq:
            return None
        m = mem_show(vm)
        again, host2 = bal.settled()
        return (seq, host, m) if (again, host2) == (seq, host) else None
    seq, host, m = vm.wait_until(fresh, STATS_TIMEOUT, f"a stats answer after seq={after_seq}", interval=0.2)
    bal.assert_matches_guest(seq, host)
    return seq, host, m


def assert_stats_are_counters(stats: Dict[str, int], m: Dict, what: str) -> None:
    got, want = {k: stats[k] for k in STAT_NAMES}, ballast_view(m)
    assert got == want, f"{what}: host stats differ from the guest's counters: {diff(got, want)} (got, want)"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant(ballast_vm, name):
    v = VARIANTS[name]
    doom = v.on("deflate-on-oom", False)
    vm = boot(ballast_vm, v, v.opts)
    transport = "pci-legacy" if v.on("disable-modern", False) else v.path.transport
    offered, accepted, flags = negotiated(vm)
    assert flags["transport"] == transport, flags
    vectors = int(v.options["vectors"]) if "vectors" in v.options else None
    # ballast takes MSI-X on the modern transport only (legacy config moves with it)
    want_irq = ("gsi" if v.path.mmio else "intx" if transport == "pci-legacy"
                else HOST.profile.irq_mode(pci=True, vectors=vectors,
                                           queues=3 + v.on("free-page-reporting", False)))
    HOST.expect("balloon interrupt mode", flags["interrupts"], want_irq)
    assert accepted & ~offered == 0, f"accepted 0x{accepted:x} beyond offered 0x{offered:x}"
    assert accepted & NEVER_ACCEPTED == 0, f"accepted 0x{accepted:x} includes a feature ballast does not implement"
    if v.on("packed", False):
        assert offered & (1 << VIRTIO_F_RING_PACKED)
    # packed rings taken whenever offered (they need a modern transport)
    packed = v.on("packed", False) and transport != "pci-legacy" and transport != "mmio-legacy"
    assert bool(accepted & (1 << VIRTIO_F_RING_PACKED)) == packed and flags["rings"] == ("packed" if packed else "split")
    assert bool(offered & (1 << VIRTIO_F_IN_ORDER)) == v.on("in_order", False)
    assert bool(offered & (1 << VIRTIO_F_INDIRECT_DESC)) == v.on("indirect_desc", True)
    assert flags["deflate_on_oom"] == ("on" if doom else "off"), flags
    assert flags["reporting"] == ("on" if v.on("free-page-reporting", False) else "off"), flags
    assert flags["page_poison"] == ("on" if v.on("page-poison", True) else "off"), flags
    assert flags["event_idx"] == ("on" if v.on("event_idx", True) else "off"), flags

    ram = parse_size(v.memory)
    host, bal = Host(vm, ram), Balloon(vm)
    m0 = settled(vm, host, doom, target=0)
    base = Baseline.of(m0)
    assert m0["usable"] == m0["managed"], m0
    assert bal.set_interval(1) == {}
    seq, host_stats, m = host_stats_at_rest(vm, bal, 0)
    assert_stats_are_counters(host_stats["stats"], m, "at boot")
    update = bal.wait_update(host_stats["last-update"], STATS_TIMEOUT)
    update = bal.wait_update(update.last_update, STATS_TIMEOUT)
    assert update.seq > seq

    # As much as the memory allows, up to 64 MiB: what is free beyond the reserve and
    # the tracking pages, halved so that the console's own work cannot push it under.
    want = min(BALLOON_MAX // PAGE, max(0, (m0["free"] - RESERVE_PAGES - 16) // 2))
    if want == 0:
        # Too small to give anything: a 1 MiB target is held at 0 and said so.
        want = 256
        assert host.balloon(ram - want * PAGE) == want
        m1 = settled(vm, host, doom, target=want)
        assert m1["balloon_pages"] == 0 and host.actual() == ram
        assert hold_lines(vm, want) == [(want, RESERVE_PAGES, 0)]
        held = 0
    else:
        assert host.balloon(ram - want * PAGE) == want
        host.wait_actual(ram - want * PAGE)
        m1 = settled(vm, host, doom, target=want)
        assert m1["balloon_pages"] == want
        assert m1["managed"] == m0["managed"] - (0 if doom else want)
        assert m1["free"] == m0["free"] - want - chunk_pages(want)
        held = want
    base.assert_allocated(m1, 0, doom, "ballooned")
    seq, host_stats, m = host_stats_at_rest(vm, bal, update.seq)
    assert_stats_are_counters(host_stats["stats"], m, "ballooned")
    assert host_stats["stats"]["stat-total-memory"] == (m0["managed"] - (0 if doom else held)) * PAGE

    assert host.balloon(ram) == 0
    host.wait_actual(ram)
    m2 = settled(vm, host, doom, target=0)
    base.assert_allocated(m2, 0, doom, "deflated")
    assert (m2["managed"], m2["free"], m2["offline"]) == (m0["managed"], m0["free"], 0)
    assert m2["balloon_inflated_total"] == m2["balloon_deflated_total"] == held

    if v.on("free-page-reporting", False):
        # The free memory is reported to the host in 2 MiB blocks, every 2 s.
        vm.wait_until(lambda: mem_show(vm)["reported_pages"] > 0, 15, "free page reporting to report")
    assert mem_show(vm)["balloon_failed"] == 0


@pytest.mark.parametrize("opts", ["disable-legacy=on,iommu_platform=on",
                                  "disable-legacy=on,iommu_platform=on,packed=on,deflate-on-oom=on"])
def test_access_platform_refused(ballast_vm, opts):
    """iommu_platform=on: the device offers ACCESS_PLATFORM and (QEMU 7.2,
    virtio_validate_features) does not keep FEATURES_OK without it. The guest says
    why, marks the device FAILED, never sets DRIVER_OK, and keeps running: console,
    memory accounting and a second look at the device all answer."""
    vm = ballast_vm(memory="128M", cmdline="verbose", **BOOT_PATHS["pvh-q35"].vm_kwargs(opts))
    vm.wait_ready(BOOT_TIMEOUT)
    offered, accepted, = (int(x, 16) for x in vm.wait_for_log(
        r"virtio-balloon \S+: features offered=0x([0-9a-f]+) accepted=0x([0-9a-f]+)$", 1).groups())
    assert offered & (1 << VIRTIO_F_ACCESS_PLATFORM) and not accepted & (1 << VIRTIO_F_ACCESS_PLATFORM)
    vm.wait_for_log(r"VIRTIO_F_ACCESS_PLATFORM offered .* does not accept it$", 1)
    vm.wait_for_log(r"virtio-balloon \S+: FAILED: device refused FEATURES_OK \(ACCESS_PLATFORM offered, not accepted\)$", 1)
    assert not up_lines(vm.log_text()), "the refused device was brought up"

    m = mem_show(vm)
    assert m["managed"] == m["usable"] == m["free"] + m["allocated"] and m["balloon_pages"] == 0
    # The device status QEMU holds: FAILED set, DRIVER_OK never.
    status = vm.qmp().cmd("x-query-virtio-status", path=VIRTIO_BACKEND)["status"]["statuses"]
    assert any(s.startswith("VIRTIO_CONFIG_S_FAILED:") for s in status), status
    assert not any("DRIVER_OK" in s or "FEATURES_OK" in s for s in status), status
    # QEMU's answer to a balloon target for a device no driver runs: the target is
    # taken, nothing moves.
    host = Host(vm, 128 << 20)
    assert host.balloon((128 << 20) - (1 << 20)) == 256
    assert host.actual() == 128 << 20
    assert vm.console("help").startswith("ok commands=")


def test_packed_off_on_the_command_line(ballast_vm):
    """packed=off: the device offers packed rings and the guest declines them (and
    says why in the verbose log); stats and a balloon target work on split rings."""
    vm = ballast_vm(memory="256M", cmdline="verbose packed=off", **BOOT_PATHS["pvh-q35"].vm_kwargs("packed=on"))
    vm.wait_ready(BOOT_TIMEOUT)
    offered, accepted, flags = negotiated(vm)
    assert offered & (1 << VIRTIO_F_RING_PACKED) and not accepted & (1 << VIRTIO_F_RING_PACKED)
    assert flags["rings"] == "split", flags
    vm.wait_for_log(r"packed virtqueues offered; using split virtqueues \(packed=off\)$", 1)
    host, bal = Host(vm, 256 << 20), Balloon(vm)
    assert bal.set_interval(1) == {}
    update = bal.wait_update(bal.stats()["last-update"], STATS_TIMEOUT)
    bal.wait_update(update.last_update, STATS_TIMEOUT)
    assert host.balloon((256 << 20) - (16 << 20)) == 4096
    host.wait_actual((256 << 20) - (16 << 20))
    assert settled(vm, host, False, target=4096)["balloon_pages"] == 4096

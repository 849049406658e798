"""The same kernel on every boot path: OVMF on q35, PVH (qemu -kernel) on q35 and
pc, and PVH on microvm with virtio-mmio, legacy (QEMU 7.2's default) and modern.

Each path: boot to ready with the expected transport, exact statistics for three
consecutive updates, a 64 MiB inflate and deflate with `actual` exact, and the
memory invariants. Where the boot path does not matter, other tests use one path;
these make sure none of the paths is left behind.
"""

import pytest

from ballast_qemu import parse_kv
from balloon_stats import Balloon, up_line
from boot_paths import BOOT_PATHS, MICROVM_MMIO_MODERN
from hosts import HOST

PATHS = {
    **BOOT_PATHS,  # efi-q35, pvh-q35, pvh-pc, pvh-microvm (legacy virtio-mmio, QEMU 7.2's default)
    "pvh-microvm-mmio-modern": MICROVM_MMIO_MODERN,
}
MEMORY = "256M"
BALLOON_BYTES = 64 << 20
PAGE = 4096


def assert_timer_ticks(vm) -> None:
    """The PIT ticks every 10 ms of guest time: over a second of TSC time, `uptime`'s
    tick count moves by about 100. The point is a timer that does not tick at all
    (an interrupt on the wrong pin); the bounds are wide because under load QEMU
    delivers late PIT edges back to back and the guest sees some of them as one."""
    first = parse_kv(vm.console("uptime"))
    assert first["tick_ms"] == "10", first

    def a_second_later():
        kv = parse_kv(vm.console("uptime"))
        return kv if int(kv["tsc_ms"]) - int(first["tsc_ms"]) >= 1000 else None
    last = vm.wait_until(a_second_later, 20, "a second of guest time", interval=0.2)
    ms = int(last["tsc_ms"]) - int(first["tsc_ms"])
    ticks = int(last["ticks"]) - int(first["ticks"])
    assert ms / 10 * 0.3 <= ticks <= ms / 10 * 1.5, f"{ticks} timer ticks in {ms} ms of TSC time"


@pytest.mark.parametrize("path", list(PATHS))
def test_boot_path(ballast_vm, path):
    p = PATHS[path]
    vm = ballast_vm(memory=MEMORY, **p.vm_kwargs())
    vm.wait_ready(timeout=60)
    up = up_line(vm)
    assert up["transport"] == p.transport, up
    # the interrupts this host gives the balloon (MSI-X with QEMU 10.0's two vectors,
    # INTx on 7.2, a GSI line on microvm), and that they really arrive
    HOST.expect("balloon interrupt mode", up["interrupts"], HOST.profile.irq_mode(pci=not p.mmio))

    assert_timer_ticks(vm)

    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    for _ in range(2):  # every request answered: each update is the next buffer
        nxt = balloon.wait_update(update.last_update, 30)
        assert nxt.seq == update.seq + 1, f"update after seq={update.seq} carries seq={nxt.seq}"
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


@pytest.mark.parametrize("path", ["pvh-q35", "pvh-pc", "pvh-microvm"])
def test_pvh_selftest(ballast_vm, path):
    vm = ballast_vm(cmdline="selftest", **BOOT_PATHS[path].vm_kwargs())
    assert vm.wait_exit(60) == 1  # guest status 0 (pass) through isa-debug-exit
    vm.wait_for_log(r"ballast: booting \(pvh front end\)", 1)
    vm.wait_for_log(r"ballast: selftest: PASS \(0 failed\)", 1)


# The smallest -m each path boots to ready with and answers stats exactly at,
# measured with QEMU 7.2 under TCG: OVMF itself needs 48 MiB (46 MiB stops in the
# firmware); the PVH image runs in 2 MiB (1 MiB is QEMU's floor below the image).
SMALLEST = {"efi-q35": "48M", "pvh-q35": "2M", "pvh-pc": "2M", "pvh-microvm": "2M"}


@pytest.mark.parametrize("path", list(SMALLEST))
def test_smallest_memory(ballast_vm, path):
    vm = ballast_vm(memory=SMALLEST[path], **BOOT_PATHS[path].vm_kwargs())
    vm.wait_ready(timeout=60)
    show = parse_kv(vm.console("mem show"))
    assert int(show["managed"]) == int(show["usable"]) == int(show["free"]) + int(show["allocated"])
    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    balloon.wait_update(update.last_update, 30)

"""Free page reporting (free-page-reporting=on) and page poisoning (page-poison,
on by default in QEMU 7.2).

The guest reports free 2 MiB blocks every two seconds; QEMU discards them, so the
memory the guest used and freed leaves the QEMU process (its RSS drops). Stats stay
exact and allocation goes on.
"""

import pytest

from ballast_qemu import parse_kv
from balloon_stats import Balloon

MIB = 1 << 20
WORKLOAD = 256  # MiB the guest uses, then frees


def rss_mib(vm) -> int:
    with open(f"/proc/{vm.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS for the QEMU process")


@pytest.mark.parametrize("poison", ["on", "off"])
def test_free_page_reporting(ballast_vm, poison):
    vm = ballast_vm(boot="pvh", memory="512M", devices=(
        "-device", f"virtio-balloon-pci,id=balloon0,free-page-reporting=on,page-poison={poison}"))
    vm.wait_ready(timeout=30)
    vm.wait_for_log(rf"up \(.*reporting on, page_poison {poison}\)", 1)
    start = parse_kv(vm.console("mem show"))

    assert vm.console(f"mem alloc {WORKLOAD}M").startswith("ok id=")
    used = rss_mib(vm)
    assert vm.console("mem free all") == f"ok freed={WORKLOAD * MIB} allocations=1"
    # every freed 2 MiB block is reported within a few rounds of two seconds, and
    # QEMU gives the memory back to the host
    vm.wait_until(lambda: rss_mib(vm) <= used - WORKLOAD * 3 // 4, 60,
                  f"QEMU's RSS to drop by {WORKLOAD * 3 // 4} MiB from {used} MiB")
    vm.wait_until(lambda: int(parse_kv(vm.console("mem show"))["reported_pages"]) >= WORKLOAD * MIB // 4096,
                  30, f"{WORKLOAD} MiB reported")
    show = parse_kv(vm.console("mem show"))
    assert int(show["reported_pages"]) % 512 == 0  # whole 2 MiB blocks
    # everything went back but what the heap kept for the block list (newlib's
    # malloc does not shrink the heap) and its page tables
    # (and the blocks being reported right now, which are off the free lists)
    kept = lambda m: (int(m["heap_pages"]) + int(m["heap_reserved"]) + int(m["page_tables"]) +
                      int(m["reporting_inflight"]))
    assert int(show["allocated"]) - int(start["allocated"]) == kept(show) - kept(start)
    assert int(show["free"]) + int(show["allocated"]) == int(start["free"]) + int(start["allocated"])

    # allocation still works on reported memory, and stats stay exact
    assert vm.console(f"mem alloc {WORKLOAD}M").startswith("ok id=")
    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    balloon.wait_update(update.last_update, 30)
    show = parse_kv(vm.console("mem show"))
    assert int(show["managed"]) == int(show["free"]) + int(show["allocated"]) == int(show["usable"])

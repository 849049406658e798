"""Free page reporting (free-page-reporting=on) and page poisoning (page-poison,
on by default in QEMU 7.2 and 10.0).

The guest reports free 2 MiB blocks every two seconds; QEMU discards them, so the
memory the guest used and freed leaves the QEMU process (its RSS drops). Stats stay
exact and allocation goes on.
"""

import re

import pytest

from balloon_stats import Balloon, up_line
from mem_show import parse_mem_show
from stats_exact import ballast_view, diff

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
    up = up_line(vm)
    assert (up["reporting"], up["page_poison"]) == ("on", poison), up
    mem = lambda: parse_mem_show(vm.console("mem show"))
    start = mem()
    assert (start["reporting"], start["page_poison"]) == (1, int(poison == "on")), start

    assert re.fullmatch(rf"ok id=\d+ bytes={WORKLOAD * MIB} blocks=\d+", vm.console(f"mem alloc {WORKLOAD}M"))
    used = rss_mib(vm)
    assert vm.console("mem free all") == f"ok freed={WORKLOAD * MIB} allocations=1"
    # every freed 2 MiB block is reported within a few rounds of two seconds, and
    # QEMU gives the memory back to the host
    vm.wait_until(lambda: rss_mib(vm) <= used - WORKLOAD * 3 // 4, 60,
                  f"QEMU's RSS to drop by {WORKLOAD * 3 // 4} MiB from {used} MiB")
    vm.wait_until(lambda: mem()["reported_pages"] >= WORKLOAD * MIB // 4096, 30, f"{WORKLOAD} MiB reported")
    show = mem()
    assert show["reported_pages"] % 512 == 0  # whole 2 MiB blocks
    # everything went back but what the heap kept for the block list (newlib's
    # malloc does not shrink the heap) and its page tables
    # (and the blocks being reported right now, which are off the free lists)
    kept = lambda m: m["heap_pages"] + m["heap_reserved"] + m["page_tables"] + m["reporting_inflight"]
    assert show["allocated"] - start["allocated"] == kept(show) - kept(start)
    assert show["free"] + show["allocated"] == start["free"] + start["allocated"]
    assert show["heap_in_use"] == start["heap_in_use"]

    # allocation still works on reported memory, and stats stay exact
    assert re.fullmatch(rf"ok id=\d+ bytes={WORKLOAD * MIB} blocks=\d+", vm.console(f"mem alloc {WORKLOAD}M"))
    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    update = balloon.wait_update(update.last_update, 30)
    show = mem()
    assert show["managed"] == show["free"] + show["allocated"] == show["usable"]
    # The answers are the counters: exactly, once no report moves free memory
    # between an answer and the `mem show` after it (reports stop when every
    # free block has been reported).
    last = {}

    def answer_is_counters():
        last["update"] = balloon.wait_update(last.get("update", update).last_update, 30)
        last["want"] = ballast_view(mem())
        return last["update"].stats == last["want"]
    try:
        vm.wait_until(answer_is_counters, 30, "a stats answer equal to the counters after it")
    except AssertionError as e:
        raise AssertionError(f"{e}: last {diff(last['update'].stats, last['want'])} (got, want)") from None

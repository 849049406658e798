"""Balloon inflate / deflate as the host sees it (QMP `balloon`, `query-balloon`,
BALLOON_CHANGE) and as the guest accounts for it (`mem show`), with the guest's page
accounting modelled exactly.

Guest facts the model relies on (drivers/virtio/balloon_inflate.c, kernel/mm/mm.c):
- Ballooned PFNs are remembered in tracking pages taken from the allocator, each a
  16-byte header and (4096 - 16) / 4 = 1020 PFNs, kept as a stack: all full but the
  top one, so `stored` PFNs need exactly ceil(stored / 1020) tracking pages.
- Without DEFLATE_ON_OOM a ballooned page is offline (out of managed memory); with
  it, it stays managed and counts as allocated.
- The balloon stops taking pages once the allocator has 2048 free pages left (and no
  reclaimable cache to shrink); tracking pages for PFNs still on the ring are taken
  after that (at most 8 buffers of 1024 PFNs, so at most 10 more pages).

QEMU 7.2 facts (hw/virtio/virtio-balloon.c, monitor/monitor.c):
- `balloon value=v` sets num_pages = (ram - v) >> 12; v must be > 0 (0 is rejected
  with GenericError); v > ram is clamped to ram.
- query-balloon's actual is ram - (the guest's `actual` field) * 4096.
- BALLOON_CHANGE is rate-limited to one event a second; a change inside the window is
  held back and sent at its end, so the last event carries the last value.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ballast_qemu import BallastVM
from mem_show import parse_mem_show


def heap_pages(m) -> int:
    """Pages the heap holds: backed ones and the ones sbrk reserved for first touch."""
    return m["heap_pages"] + m["heap_reserved"]

PAGE = 4096
MiB = 1 << 20
CHUNK_PFNS = (PAGE - 16) // 4  # PFNs per tracking page
RESERVE_PAGES = 2048           # MM_BALLOON_RESERVE_PAGES (kernel/mm/mm.h)
PFNS_PER_BUF, BUFS = 1024, 8   # BALLOON_PFNS_PER_BUF, BALLOON_BUFS
HUGE_PAGES = 512               # a 2 MiB block, the allocator's largest order
# Tracking pages the ring can still need after the reserve stopped inflation.
MAX_LATE_CHUNKS = -(-PFNS_PER_BUF * BUFS // CHUNK_PFNS) + 1

BOOT_TIMEOUT = 90
SETTLE_TIMEOUT = 30

HOLD_RE = re.compile(
    r"ballast: balloon: target (\d+) pages not reachable: keeping (\d+) free pages for the kernel; "
    r"holding at (\d+)$", re.M)


def chunk_pages(pfns: int) -> int:
    """Tracking pages for `pfns` ballooned PFNs."""
    return -(-pfns // CHUNK_PFNS)


def target_pages(ram: int, value: int) -> int:
    """num_pages QEMU asks for after `balloon value=value`."""
    return (ram - min(value, ram)) >> 12


# ---- the guest's side ------------------------------------------------------------------

def console(vm: BallastVM, cmd: str, timeout: float = 10.0) -> str:
    return vm.console(cmd, timeout)


def transcript(vm: BallastVM) -> str:
    """Guest lines as the console socket delivered them (BallastVM.received)."""
    return "\n".join(vm.received())


def wait_line(vm: BallastVM, regex: str, timeout: float) -> re.Match:
    """Wait for a guest line on the console."""
    pattern = re.compile(regex, re.M)
    vm.console_client()  # connected, so the socket carries the lines
    def seen() -> Optional[re.Match]:
        return pattern.search(transcript(vm))
    return vm.wait_until(seen, timeout, f"a console line matching {regex!r}", interval=0.1)


def mem_show(vm: BallastVM) -> Dict:
    """`mem show` parsed (mem_show.parse_mem_show: every documented key)."""
    return parse_mem_show(console(vm, "mem show"))


def at_rest(m: Dict) -> bool:
    return m["balloon_inflating"] == 0 and m["balloon_deflating"] == 0


def invariant_errors(m: Dict, deflate_on_oom: bool) -> List[str]:
    """Every exact relation between `mem show`'s counters that holds at any moment."""
    errs = []
    def need(ok: bool, what: str) -> None:
        if not ok:
            errs.append(what)
    cached = m["cached"]  # the reclaimable cache: allocated pages the allocator may take back
    need(m["managed"] == m["free"] + m["allocated"],
         f"managed {m['managed']} != free {m['free']} + allocated {m['allocated']}")
    need(cached <= m["allocated"], f"cached {cached} > allocated {m['allocated']} (cached is part of allocated)")
    need(m["managed"] + m["offline"] == m["usable"],
         f"managed {m['managed']} + offline {m['offline']} != usable {m['usable']}")
    blocks = sum(n << order for order, n in enumerate(m["free_blocks"]))
    need(blocks == m["free"], f"free_blocks {m['free_blocks']} hold {blocks} pages, free says {m['free']}")
    need(m["balloon_failed"] == 0, "the balloon device failed")
    need(m["deflate_on_oom"] == int(deflate_on_oom),
         f"deflate_on_oom={m['deflate_on_oom']}, expected {int(deflate_on_oom)}")
    if deflate_on_oom:
        need(m["offline"] == 0, f"offline {m['offline']} with deflate-on-oom (ballooned pages stay managed)")
    else:
        # pages in inflate buffers are already offline; pages in deflate buffers still are
        need(m["offline"] == m["balloon_pages"] + m["balloon_inflating"],
             f"offline {m['offline']} != balloon_pages {m['balloon_pages']} + inflating {m['balloon_inflating']}")
        need(m["oom_deflates"] == 0 and m["oom_pages"] == 0, "OOM deflates without deflate-on-oom")
    need(m["balloon_inflated_total"] - m["balloon_deflated_total"] - m["oom_pages"] == m["balloon_pages"],
         f"inflated_total {m['balloon_inflated_total']} - deflated_total {m['balloon_deflated_total']} "
         f"- oom_pages {m['oom_pages']} != balloon_pages {m['balloon_pages']}")
    return errs


def assert_invariants(m: Dict, deflate_on_oom: bool, what: str = "") -> None:
    errs = invariant_errors(m, deflate_on_oom)
    assert not errs, f"{what}: page accounting broken: {errs}\nmem show: {m}"


@dataclass
class Baseline:
    """The guest's allocated pages before the test moved anything, and the kernel
    memory (heap, page tables) it had then; later states are predicted from it."""
    allocated: int
    heap_pages: int
    page_tables: int
    free: int
    managed: int
    cached: int = 0

    @classmethod
    def of(cls, m: Dict) -> "Baseline":
        assert m["balloon_pages"] == 0 and at_rest(m), f"baseline taken with a balloon: {m}"
        return cls(m["allocated"], heap_pages(m), m["page_tables"], m["free"], m["managed"], m["cached"])

    def expected_allocated(self, m: Dict, held_pages: int, deflate_on_oom: bool) -> int:
        """Allocated pages at rest: the baseline, heap and page-table growth since,
        the test's own allocations, the tracking pages, the cache's growth (cached
        pages are allocated ones) and (deflate-on-oom) the ballooned pages themselves."""
        pages = m["balloon_pages"]
        return (self.allocated + (heap_pages(m) - self.heap_pages) + (m["page_tables"] - self.page_tables)
                + held_pages + chunk_pages(pages) + (m["cached"] - self.cached)
                + (pages if deflate_on_oom else 0))

    def assert_allocated(self, m: Dict, held_pages: int, deflate_on_oom: bool, what: str = "") -> None:
        want = self.expected_allocated(m, held_pages, deflate_on_oom)
        assert m["allocated"] == want, (
            f"{what}: allocated {m['allocated']} != {want} = baseline {self.allocated} "
            f"+ heap {heap_pages(m) - self.heap_pages} + page tables {m['page_tables'] - self.page_tables} "
            f"+ held {held_pages} + tracking {chunk_pages(m['balloon_pages'])} "
            f"+ cache {m.get('cached', 0) - self.cached}"
            f"{' + ballooned ' + str(m['balloon_pages']) if deflate_on_oom else ''}\nmem show: {m}")


def hold_pattern(target: int) -> str:
    """The reserve-hold line for one target."""
    return HOLD_RE.pattern.replace(r"target (\d+)", f"target ({target})", 1)


def hold_lines(vm: BallastVM, target: Optional[int] = None) -> List[tuple]:
    """(target, reserve, holding_at) of every reserve-hold line received so far,
    optionally one target's."""
    console(vm, "help")  # collect what arrived since the last command
    got = [tuple(map(int, m.groups())) for m in HOLD_RE.finditer(transcript(vm))]
    return [g for g in got if target is None or g[0] == target]


# ---- the host's side -------------------------------------------------------------------


@dataclass
class Host:
    """QMP balloon control of one guest; BALLOON_CHANGE events are collected as they
    arrive (the legacy client only reads events while it runs a command or polls)."""
    vm: BallastVM
    ram: int
    events: List[dict] = field(default_factory=list)

    def balloon(self, value: int) -> int:
        """Sets the target; returns num_pages QEMU will ask for."""
        assert self.vm.qmp().cmd("balloon", value=value) == {}
        return target_pages(self.ram, value)

    def balloon_raw(self, value: int) -> dict:
        return self.vm.qmp().cmd_raw("balloon", {"value": value})

    def actual(self) -> int:
        return self.vm.qmp().cmd("query-balloon")["actual"]

    def poll_events(self) -> List[dict]:
        new = [e for e in self.vm.qmp().get_events(wait=False) if e["event"] == "BALLOON_CHANGE"]
        self.events += new
        return new

    def take_events(self) -> List[dict]:
        self.poll_events()
        got, self.events = self.events, []
        return got

    def wait_actual(self, value: int, timeout: float = SETTLE_TIMEOUT, interval: float = 0.02) -> float:
        """Wait for query-balloon actual == value; returns the seconds it took."""
        t0 = time.monotonic()
        last = []
        def reached() -> bool:
            last[:] = [self.actual()]
            return last[0] == value
        try:
            self.vm.wait_until(reached, timeout, f"query-balloon actual == {value}", interval=interval)
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast query-balloon actual: {last}") from None
        return time.monotonic() - t0

    def wait_event(self, actual: int, timeout: float = 10) -> List[dict]:
        """Wait for a BALLOON_CHANGE carrying `actual`; returns the events since the
        last take_events() (that one included) and forgets them."""
        def seen() -> bool:
            self.poll_events()
            return any(e["data"]["actual"] == actual for e in self.events)
        try:
            self.vm.wait_until(seen, timeout, f"a BALLOON_CHANGE event with actual={actual}", interval=0.05)
        except AssertionError as e:
            raise AssertionError(f"{e}\nevents seen: {[x['data']['actual'] for x in self.events]}") from None
        return self.take_events()


def settled(vm: BallastVM, host: Host, deflate_on_oom: bool, target: int,
            timeout: float = SETTLE_TIMEOUT, extra=None) -> Dict:
    """Wait until the balloon rests at `target` (num_pages): the guest has read it,
    nothing is on the rings, and it is either at the target or holding at the reserve
    (free <= 2048, so a retry cannot take more), with query-balloon showing the
    guest's balloon_pages; `extra(m)` may add a condition. Every `mem show` read on
    the way must keep the invariants. Returns the settled one."""
    last: List[Dict] = []
    def rest() -> Optional[Dict]:
        m = mem_show(vm)
        last[:] = [m]
        assert_invariants(m, deflate_on_oom, "while settling")
        if m["balloon_target"] != target or not at_rest(m):
            return None
        pages = m["balloon_pages"]
        if not (pages == target or (pages < target and m["free"] <= RESERVE_PAGES)):
            return None
        if host.actual() != host.ram - pages * PAGE:
            return None
        if extra is not None and not extra(m):
            return None
        return m
    try:
        m = vm.wait_until(rest, timeout, "the balloon to settle", interval=0.05)
    except AssertionError as e:
        raise AssertionError(f"{e}\nlast mem show: {last}\nquery-balloon actual: {host.actual()}") from None
    assert_invariants(m, deflate_on_oom, "at rest")
    assert m["offline"] == (0 if deflate_on_oom else m["balloon_pages"]), f"offline at rest: {m}"
    return m

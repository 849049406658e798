#!/usr/bin/env python3
"""Soak: one ballast guest for --minutes under random balloon targets and console
workloads, with the host polling the balloon stats every second.

    make -f Makefile.qemu soak SOAK_MINUTES=30      (make check runs --minutes 2)
    build/venv/bin/python tests/soak/soak.py --minutes 5 --seed 1234

Every few seconds a step sets a random balloon target (reachable ones, the whole
balloon back, the whole guest, and targets below the guest's 2048-page reserve that it
must refuse) and runs a random workload on the console (mem alloc/free/touch/huge,
cache grow/drop). Once the guest has settled it checks, exactly:
- the page invariants (docs/console.md) on every `mem show`, and the model: allocated
  = baseline + the workload's pages + balloon tracking pages + cache;
- query-balloon's actual = the guest's balloon pages; a target is met, or refused
  only with at most 2048 pages free and no cache left (so a reachable one is met);
  the whole guest and targets within the reserve are refused, with the hold line
  logged, and no page is lost (the model);
- every second: last-update strictly increased, the host's stats are exactly the
  guest's logged line for that buffer and exactly its `mem show` counters, which
  do not move while the guest is at rest;
- the kernel heap: see HEAP below.
Any failure exits 1 with the seed, the step, the last steps and the guest's log.
Built on tests/e2e (ballast_qemu, stats_exact, inflate_helpers).

HEAP. The heap is newlib's nano malloc (first fit, 8-byte chunk header) over sbrk,
which never shrinks, so it keeps a high-water mark; what must not happen is growth
per step. The soak makes that exact instead of picking a slack:
- every heap request of the workload is one size: `mem alloc` records its blocks in
  4096-byte chunks and the soak's `mem touch` asks for 4096 bytes, so any free heap
  block fits any request and the heap never needs more than its peak of live
  requests. The warm-up pre-grows it to more requests than the workload can ever
  hold live (~2 MiB with 512 MiB of RAM), so afterwards the break, the heap's pages
  and the page tables must not move at all: the bound is 0, at every step;
- at each checkpoint (every minute and at the end: everything freed, cache dropped,
  balloon empty; the page counters must then be exactly the warm-up's) the bytes in
  live heap chunks (`heap_in_use`, newlib's mallinfo) must be exactly the first
  checkpoint's, so a leak of a few bytes fails at the next checkpoint, though the
  arena would hide it from the break for thousands of steps; and a single
  `mem touch` of the whole free heap must fit without moving the break (the free
  heap is one block again: no fragmentation left behind either).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from ballast_qemu import BallastVM, parse_size  # noqa: E402
from hosts import parse_stats_lines  # noqa: E402
from inflate_helpers import (HOLD_RE, PAGE, RESERVE_PAGES, Baseline, Host,  # noqa: E402
                             at_rest, chunk_pages, heap_pages, invariant_errors)
from stats_exact import POLLING_1S, StatsGuest  # noqa: E402
from stats_model import PLAIN  # noqa: E402

# Deadlines: TCG on a shared 2-core box; nothing waits a fixed time.
BOOT_TIMEOUT = 120
CMD_TIMEOUT = 60        # a `mem alloc` of most of the guest touches every page
SETTLE_TIMEOUT = 90
UPDATE_TIMEOUT = 20     # polling every second: a new buffer is due after ~1 s
STEP_SECONDS = (2.0, 5.0)
CHECKPOINT_SECONDS = 60
KEEP_LINES = 4000       # console lines kept: the stats line of the buffer being checked is recent

UNTRACKED = re.compile(r"balloon: no memory to track (\d+) ballooned pages; took them back")  # balloon_inflate.c
MAX_ALLOCS = 24         # live mem alloc / mem huge records (the guest has 64 slots)
MAX_TOUCHES = 16        # live mem touch allocations
TOUCH_BYTES = 4096      # the size of a mem alloc record chunk: one heap request size (HEAP)
BLOCKS_PER_RECORD = 255  # kernel/mm/mm_console.c MEM_CHUNK_BLOCKS


class SoakGuest(StatsGuest):
    """StatsGuest for hours of console traffic: stats lines come from the console
    socket only (the serial log file grows by megabytes and StatsGuest.lines re-reads
    it on every call; the socket is connected before the first checked buffer), and
    the transcript is pruned between steps."""

    def lines(self):
        return parse_stats_lines("\n".join(self.received))

    def prune(self) -> None:
        self.vm.forget_received(KEEP_LINES)


def invariants(m, what: str) -> None:
    errs = invariant_errors(m, False)
    assert not errs, f"{what}: page accounting broken: {errs}\nmem show: {m}"


def answer(pattern: str, got: str, cmd: str) -> re.Match:
    m = re.fullmatch(pattern, got)
    assert m, f"{cmd!r} answered {got!r}, want {pattern!r}"
    return m


class Soak:
    """One guest, the model of what the soak holds in it (allocations, touches, the
    target) and the running counts for the summary; `history` describes each step
    as it is sent, for the failure report."""

    def __init__(self, vm: BallastVM, rng: random.Random, ram: int, inject=None):
        self.vm, self.rng, self.ram, self.inject = vm, rng, ram, inject
        self.g = SoakGuest(vm)
        self.host = Host(vm, ram)
        self.step_no = 0
        self.t0 = time.monotonic()
        self.history: deque = deque(maxlen=15)
        self.held = {}           # mem alloc / mem huge id -> pages
        self.touches = set()     # mem touch ids (TOUCH_BYTES each, on the heap)
        self.target = 0          # num_pages the host asks for
        self.count = Counter()
        self.base = None         # Baseline at the first checkpoint
        self.arena = None        # heap_bytes after the warm-up; must not change
        self.heap = {}           # 'start'/'end' heap samples for the summary
        self.m = None            # the last settled `mem show`
        self.seq = self.lu = 0   # the last checked stats buffer and its last-update
        self.last_checkpoint = 0.0

    # ---- the guest ------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.history[-1] += " " + text

    def cmd(self, line: str) -> str:
        got = self.g.cmd(line, CMD_TIMEOUT)
        self.note(f"[{line} -> {got}]")
        return got

    def mem(self, what: str):
        m = self.g.mem()
        invariants(m, what)
        return m

    def settle(self, target: int):
        """Waits until the balloon rests at `target` and nothing else moves: the guest
        read it, no buffers in flight, at the target or refused at the reserve (free at
        most 2048 pages and the cache given to the balloon: it reclaims the cache
        before it holds), query-balloon showing the guest's pages, and no async
        reclaim due (free below the low watermark with cache left)."""
        last = []

        def rest():
            m = self.mem("while settling")
            last[:] = [m]
            pages, low = m["balloon_pages"], max(m["managed"] // 64, 256)
            if m["balloon_target"] != target or not at_rest(m):
                return None
            if pages != target and not (pages < target and m["free"] <= RESERVE_PAGES and m["cached"] == 0):
                return None
            if m["free"] < low and m["cached"] > 0:
                return None
            return m if self.host.actual() == self.ram - pages * PAGE else None
        try:
            m = self.vm.wait_until(rest, SETTLE_TIMEOUT, f"the balloon to settle at {target} pages", interval=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast mem show: {last}\nquery-balloon actual: {self.host.actual()}") from None
        assert m["offline"] == m["balloon_pages"], f"offline at rest != balloon_pages: {m}"
        return m

    def check_model(self, m) -> None:
        """Every page accounted for: the baseline, the workload's held pages, the
        balloon's tracking pages and the cache; the heap exactly where the warm-up
        left it; total memory less exactly the ballooned pages."""
        held = sum(self.held.values())
        want = self.base.expected_allocated(m, held, False)  # counts the cache's growth too
        assert m["allocated"] == want, (
            f"allocated {m['allocated']} != {want} = baseline {self.base.allocated} + held {held} "
            f"+ tracking {chunk_pages(m['balloon_pages'])} + cached {m['cached']} "
            f"(+ kernel growth {heap_pages(m) - self.base.heap_pages + m['page_tables'] - self.base.page_tables})"
            f"\nmem show: {m}")
        assert m["managed"] == self.base.managed - m["balloon_pages"], f"managed: {m}"
        assert (m["heap_bytes"], heap_pages(m), m["page_tables"]) == \
            (self.arena, self.base.heap_pages, self.base.page_tables), (
            f"the heap grew after the warm-up: heap_bytes {m['heap_bytes']} (arena {self.arena}), "
            f"heap pages {heap_pages(m)} (was {self.base.heap_pages}), page tables {m['page_tables']} "
            f"(was {self.base.page_tables})")

    # ---- the stats --------------------------------------------------------------------

    def check_stats(self) -> None:
        """The next buffer the guest builds from now on (the ones built during the step
        saw it half done): last-update strictly later than at the previous check, the
        host's values exactly the guest's line for it and exactly `mem show` (the guest
        is at rest: nothing may have moved since the step settled)."""
        show = self.g.show()
        assert (show["paused"], show["held"], show["failed"]) == (0, 0, 0), f"stats show: {show}"
        snap = self.g.next_update(max(self.seq, show["seq"]), self.lu, UPDATE_TIMEOUT)
        assert snap.seq > show["seq"] and snap.last_update > self.lu, (snap.seq, show, snap.last_update, self.lu)
        assert snap.last_update <= time.time() + 1, f"last-update {snap.last_update} is in the future"
        invariants(snap.mem, "at a stats check")
        self.g.assert_sent(snap, PLAIN)
        if self.m is not None:
            keys = ("free", "allocated", "cached", "managed", "balloon_pages", "heap_bytes", "heap_in_use",
                    "minor_faults")
            moved = {k: (self.m[k], snap.mem[k]) for k in keys if self.m[k] != snap.mem[k]}
            assert not moved, f"counters moved while the guest was at rest: {moved}"
        self.count["stats checks"] += 1
        self.seq, self.lu = snap.seq, snap.last_update

    # ---- the host's target ------------------------------------------------------------

    def pick_values(self):
        r, m, rng = self.rng.random(), self.m, self.rng
        if r < 0.10:
            return "empty", [self.ram]                      # the whole balloon back
        if r < 0.18:
            return "whole-guest", [1]                       # more than the guest has
        if r < 0.30:                                        # within the reserve: refused
            return "below-reserve", [rng.randint(1, RESERVE_PAGES * PAGE)]
        # What the guest could give now: free, cache and the balloon itself, less the
        # reserve and the tracking pages (the step's workload may take some of it).
        room = m["free"] + m["cached"] + m["balloon_pages"] - RESERVE_PAGES - 64
        room -= chunk_pages(max(room, 0))
        pick = lambda: max(1, self.ram - rng.randint(0, max(room, 0)) * PAGE - rng.randrange(PAGE))
        if r < 0.40:                                        # changed while buffers are in flight
            return "burst", [pick() for _ in range(rng.randint(2, 4))]
        return "random", [pick()]

    def set_target(self) -> str:
        kind, values = self.pick_values()
        for v in values:
            self.target = self.host.balloon(v)
        self.count[f"target {kind}"] += 1
        self.count["targets set"] += 1
        self.note(f"target {kind} value={values} -> {self.target} pages;")
        return kind

    # ---- the workload -----------------------------------------------------------------

    def workload(self, quiet: bool):
        """One random console operation; with `quiet` (the balloon at rest at an
        unchanged target) its outcome is predicted exactly from the settled state.
        Returns (what it did, alloc failures, OOM kills, (huge allocated, huge failed))."""
        m, rng = self.m, self.rng
        live = len(self.held) + len(self.touches)
        kind = rng.choices(["alloc", "free", "touch", "huge", "cache-grow", "cache-drop", "none"],
                           weights=[4, 3, 2, 1, 2, 1, 1])[0]
        if kind in ("alloc", "huge") and len(self.held) >= MAX_ALLOCS or kind == "touch" and \
                len(self.touches) >= MAX_TOUCHES:
            kind = "free"
        if kind == "free" and not live:
            kind = "alloc"
        room = m["free"] + m["cached"]
        failures, oom, huge = 0, 0, (0, 0)
        if kind == "alloc":
            r = rng.random()
            pages = (rng.randint(1, 64) if r < 0.4 else rng.randint(65, 8192) if r < 0.7
                     else max(1, room + rng.randint(-256, 256)))  # around all there is: OOM or reclaim
            pages = min(pages, m["usable"])
            got = self.cmd(f"mem alloc {pages * PAGE}")
            if got.startswith("ok"):
                a = answer(rf"ok id=(\d+) bytes={pages * PAGE} blocks=(\d+)", got, "mem alloc")
                self.held[int(a.group(1))] = pages
                assert not quiet or pages <= room, f"allocated {pages} pages with {room} free + cached"
                kind = "alloc ok"
            else:
                answer(rf"err out of memory after \d+ of {pages * PAGE} bytes; nothing kept", got, "mem alloc")
                assert not quiet or pages > room, f"out of memory for {pages} pages with {room} free + cached"
                kind, failures, oom = "alloc oom", 1, 1
        elif kind == "free":
            if rng.random() < 0.15:
                ids = sorted(self.held) + sorted(self.touches)
                got = self.cmd("mem free all")
            else:
                ids = [rng.choice(sorted(self.held) + sorted(self.touches))]
                got = self.cmd(f"mem free {ids[0]}")
            freed = sum(self.held.pop(i) * PAGE if i in self.held else TOUCH_BYTES for i in ids)
            self.touches -= set(ids)
            assert got == f"ok freed={freed} allocations={len(ids)}", f"mem free: {got!r}, want freed={freed}"
        elif kind == "touch":
            # no demand faults: the warm-up touched every page of the arena
            a = answer(rf"ok id=(\d+) bytes={TOUCH_BYTES} minor_faults=0", self.cmd(f"mem touch {TOUCH_BYTES}"),
                       "mem touch")
            self.touches.add(int(a.group(1)))
        elif kind == "huge":
            n = rng.randint(1, 6)
            a = answer(r"ok id=(\d+) allocated=(\d+) failed=(\d+)", self.cmd(f"mem huge {n}"), "mem huge")
            huge = int(a.group(2)), int(a.group(3))
            assert sum(huge) == n, a.group(0)
            self.held[int(a.group(1))] = huge[0] * 512
            failures = huge[1]
        elif kind == "cache-grow":
            wanted = rng.randint(1, max(1, m["free"] + 4096))
            a = answer(rf"ok grown=(\d+) wanted={wanted} cached=(\d+)", self.cmd(f"cache grow {wanted * PAGE}"),
                       "cache grow")
            grown, cached = int(a.group(1)), int(a.group(2))
            assert grown <= wanted
            # it takes free pages only, one at a time until none is left
            assert not quiet or (grown, cached) == (min(wanted, m["free"]), m["cached"] + grown), \
                f"cache grow {wanted}: grown={grown} cached={cached} from free={m['free']} cached={m['cached']}"
        elif kind == "cache-drop":
            a = answer(r"ok dropped=(\d+)", self.cmd("cache drop"), "cache drop")
            assert not quiet or int(a.group(1)) == m["cached"], f"dropped {a.group(1)}, cached was {m['cached']}"
        self.count[f"op {kind}"] += 1
        return kind, failures, oom, huge

    # ---- a step -----------------------------------------------------------------------

    def step(self) -> None:
        self.step_no += 1
        self.g.prune()
        self.history.append(f"step {self.step_no} t={time.monotonic() - self.t0:.0f}s:")
        before, old_target = self.m, self.target
        mark = len(self.g.received)
        changed = self.rng.random() < 0.65
        kind = self.set_target() if changed else "unchanged"
        if self.inject and self.step_no == self.inject[1]:
            self.note(f"[injected: {self.inject[0]} -> {self.g.cmd(self.inject[0])}]")
        op, failures, oom, huge = self.workload(quiet=not changed)
        m = self.m = self.settle(self.target)
        self.note(f"settled: balloon_pages={m['balloon_pages']} free={m['free']} cached={m['cached']}")
        self.check_model(m)
        pages = m["balloon_pages"]
        if pages == self.target:
            self.count["targets reached"] += changed
            assert kind not in ("whole-guest", "below-reserve"), f"a target within the reserve was met: {m}"
        else:
            self.count["targets refused"] += changed
            if self.target != old_target:  # a new target: the guest says once that it holds
                holds = [tuple(map(int, h.groups())) for h in HOLD_RE.finditer("\n".join(self.g.received[mark:]))]
                mine = [h for h in holds if h[0] == self.target]
                assert mine and all(r == RESERVE_PAGES and at <= pages for _, r, at in mine), \
                    f"held at {pages} of {self.target} pages; hold lines since the target: {holds}"
        self.check_counters(before, m, op, failures, oom, huge, mark)
        self.count["BALLOON_CHANGE events"] += len(self.host.take_events())
        self.check_stats()

    def check_counters(self, before, m, op: str, failures: int, oom: int, huge, mark: int) -> None:
        d = {k: m[k] - before[k] for k in ("alloc_failures", "oom_kills", "huge_allocs", "huge_failures")}
        assert d["oom_kills"] == oom, f"oom_kills grew by {d['oom_kills']}, want {oom}"
        # Failed allocations: the workload's own, and the balloon's tracking pages,
        # which it takes straight from the free list as the host acks an inflate
        # buffer and which fail while a cache grow has emptied it: the guest then
        # takes those pages back and logs how many, a line a buffer.
        untracked = sum(int(m.group(1)) for line in self.g.received[mark:] if (m := UNTRACKED.search(line)))
        assert d["alloc_failures"] == failures + untracked, \
            f"alloc_failures grew by {d['alloc_failures']}, want {failures} + {untracked} untracked balloon pages"
        self.count["untracked balloon pages"] += untracked
        if op == "huge":
            assert (d["huge_allocs"], d["huge_failures"]) == huge, f"huge counters {d}, want {huge}"
        elif not op.startswith("alloc"):  # mem alloc takes 2 MiB blocks too, never failing ones
            assert (d["huge_allocs"], d["huge_failures"]) == (0, 0), f"huge counters moved: {d}"
        assert d["huge_failures"] == huge[1], f"huge_failures grew by {d['huge_failures']}, want {huge[1]}"

    def idle(self, until: float) -> None:
        """Polling every second: each check waits for the next buffer."""
        while time.monotonic() < until:
            self.check_stats()

    # ---- warm-up and checkpoints ------------------------------------------------------

    def warm_up(self) -> None:
        self.history.append("warm-up:")
        m = self.mem("at boot")
        self.boot_heap = m["heap_bytes"]  # allocated before the console was used; left alone
        # Calibrate with the heap empty: a record chunk (`mem alloc` of one page) and a
        # TOUCH_BYTES touch must be one heap request size, and the chunk header.
        answer(r"ok id=\d+ bytes=4096 blocks=1", self.cmd("mem alloc 4096"), "mem alloc")
        record = self.mem("after a record")["heap_bytes"] - self.boot_heap
        self.cmd(f"mem touch {TOUCH_BYTES}")
        touch = self.mem("after a touch")["heap_bytes"] - self.boot_heap - record
        assert record == touch > TOUCH_BYTES, (
            f"heap requests: a mem alloc record took {record} bytes, a {TOUCH_BYTES}-byte touch {touch}: "
            "the heap check needs one request size (see HEAP in the docstring)")
        self.header = touch - TOUCH_BYTES
        self.cmd("mem free all")
        # The arena: more requests than can ever be live (records: at most one chunk
        # a BLOCKS_PER_RECORD blocks, blocks <= pages, plus a partial chunk each).
        slots = MAX_TOUCHES + MAX_ALLOCS + m["usable"] // BLOCKS_PER_RECORD + 1
        self.cmd(f"mem touch {slots * touch - self.header}")
        self.cmd("mem free all")
        # Whatever the kernel first sets up when the balloon, the cache and the stats
        # are used: inflate by half, a cache, back.
        self.target = self.host.balloon(self.ram // 2)
        self.cmd(f"cache grow {16 << 20}")
        self.settle(self.target)
        self.cmd("cache drop")
        self.checkpoint(first=True)

    def checkpoint(self, first: bool = False) -> None:
        """Everything back to the start: the balloon empty, all freed, no cache. The
        page model must be exactly the baseline and the whole free heap must be one
        block (the probe)."""
        self.history.append(f"checkpoint t={time.monotonic() - self.t0:.0f}s:")
        self.target = self.host.balloon(self.ram)
        freed = sum(self.held.values()) * PAGE + len(self.touches) * TOUCH_BYTES
        got = self.cmd("mem free all")
        assert got == f"ok freed={freed} allocations={len(self.held) + len(self.touches)}", \
            f"mem free all: {got!r}, want freed={freed}"
        self.held.clear()
        self.touches.clear()
        self.cmd("cache drop")
        m = self.settle(0)
        if first:
            self.base, self.arena, self.in_use = Baseline.of(m), m["heap_bytes"], m["heap_in_use"]
            self.heap["start"] = m
            self.boot_seq = self.g.show()
        self.check_model(m)
        assert m["heap_in_use"] == self.in_use, (
            f"a heap leak: {m['heap_in_use'] - self.in_use} bytes still in live heap chunks after `mem free all` "
            f"(heap_in_use {m['heap_in_use']}, {self.in_use} at the first checkpoint)")
        free_heap = m["heap_bytes"] - self.boot_heap
        a = answer(r"ok id=(\d+) bytes=(\d+) minor_faults=(\d+)", self.cmd(f"mem touch {free_heap - self.header}"),
                   "the heap probe")
        probe = self.mem("after the heap probe")
        assert probe["heap_bytes"] == m["heap_bytes"], (
            f"a heap leak: a request for the whole free heap ({free_heap - self.header} bytes) did not fit, the "
            f"break moved {m['heap_bytes']} -> {probe['heap_bytes']}: something is still allocated on the heap "
            f"after `mem free all`")
        assert a.group(3) == "0", f"the heap probe faulted pages in the arena: {a.group(0)}"
        assert self.cmd(f"mem free {a.group(1)}") == f"ok freed={free_heap - self.header} allocations=1"
        self.m = self.settle(0)
        self.heap["end"] = self.m
        self.count["checkpoints"] += 1
        self.check_stats()
        self.last_checkpoint = time.monotonic()
        c = self.count
        print(f"soak: {self.last_checkpoint - self.t0:.0f}s step {self.step_no}: checkpoint {c['checkpoints']} ok "
              f"(stats seq {self.seq}, {c['stats checks']} checks, {c['targets set']} targets, heap "
              f"{self.m['heap_bytes']} bytes)", flush=True)

    # ---- the report -------------------------------------------------------------------

    def summary(self, seconds: float, seed: int) -> str:
        m, s0, b0, s1 = self.m, self.boot_seq, self.heap["start"], self.g.show()
        c = self.count
        ops = ", ".join(f"{k[3:]} {v}" for k, v in sorted(c.items()) if k.startswith("op "))
        kinds = ", ".join(f"{k[7:]} {v}" for k, v in sorted(c.items()) if k.startswith("target ") and
                          k not in ("targets set", "targets reached", "targets refused"))
        hp = lambda x: f"{x['heap_bytes']} bytes / {heap_pages(x)} pages, {x['heap_in_use']} in use"
        return "\n".join([
            f"soak passed: seed={seed}, {seconds:.0f}s, {self.step_no} steps, {c['checkpoints']} checkpoints "
            f"(heap in use back to {self.in_use} bytes and the heap probe passed each time)",
            f"  stats: guest answered seq {s0['seq']} -> {s1['seq']} ({s1['seq'] - s0['seq']} buffers, "
            f"requests {s0['requests']} -> {s1['requests']}); {c['stats checks']} checks, each a new "
            f"last-update, host == guest line == mem show",
            f"  targets: {c['targets set']} set ({kinds}), {c['targets reached']} reached, "
            f"{c['targets refused']} refused at the reserve; {c['BALLOON_CHANGE events']} BALLOON_CHANGE events",
            f"  pages moved: inflated {m['balloon_inflated_total'] - b0['balloon_inflated_total']}, deflated "
            f"{m['balloon_deflated_total'] - b0['balloon_deflated_total']} (since boot: "
            f"{m['balloon_inflated_total']} / {m['balloon_deflated_total']})",
            f"  workload: {ops}",
            f"  heap: start {hp(b0)}, end {hp(self.heap['end'])} (bound: unchanged)",
        ])


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 passed (summary printed), 1 a check failed (seed, step, last steps "
               "and the guest's log printed; the work directory is kept), 2 setup error.")
    p.add_argument("--minutes", type=float, default=2.0, help="length of the random phase (default 2)")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    p.add_argument("--memory", default="512M", help="guest RAM, QEMU -m syntax (default 512M)")
    p.add_argument("--boot", choices=("pvh", "efi"), default="pvh",
                   help="pvh: qemu -kernel build/ballast.elf (default, fast); efi: OVMF + ballast.efi")
    p.add_argument("--workdir", type=Path, default=None, help="serial log and QEMU logs (default: a temp dir)")
    p.add_argument("--inject", metavar="CMD", default=None,
                   help="send this console command behind the soak's back at step --inject-step, to see it "
                        "fail (e.g. 'stats set free-memory 1', 'stats pause', 'mem alloc 1M')")
    p.add_argument("--inject-step", type=int, default=3)
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    ram = parse_size(args.memory)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ballast-soak-"))
    if workdir.exists() and any(workdir.iterdir()) and args.workdir:
        print(f"soak: {workdir} is not empty (a stale serial log would be read as this guest's)", file=sys.stderr)
        return 2
    print(f"soak: seed={seed} minutes={args.minutes} memory={args.memory} boot={args.boot} workdir={workdir}",
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so QEMU is killed on the way out
    vm = BallastVM(workdir, boot=args.boot, memory=args.memory, devices=POLLING_1S)
    soak = None
    try:
        try:
            vm.start()
        except FileNotFoundError as e:
            print(f"soak: {e}", file=sys.stderr)
            return 2
        vm.wait_ready(BOOT_TIMEOUT)
        soak = Soak(vm, random.Random(seed), ram, (args.inject, args.inject_step) if args.inject else None)
        soak.warm_up()
        t_start = time.monotonic()
        end = t_start + args.minutes * 60
        while time.monotonic() < end:
            t = time.monotonic()
            period = soak.rng.uniform(*STEP_SECONDS)
            soak.step()
            soak.idle(min(t + period, end))
            if time.monotonic() - soak.last_checkpoint >= CHECKPOINT_SECONDS and time.monotonic() < end:
                soak.checkpoint()
        soak.checkpoint()
        print(soak.summary(time.monotonic() - t_start, seed), flush=True)
        vm.kill()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # every failure: report what is needed to replay it
        where = f"step {soak.step_no}, {time.monotonic() - soak.t0:.0f}s in" if soak else "boot"
        print(f"\nSOAK FAILED at {where}: seed={seed}\n"
              f"replay: {sys.executable} {sys.argv[0]} --seed {seed} --minutes {args.minutes} "
              f"--memory {args.memory} --boot {args.boot}"
              + (f" --inject '{args.inject}' --inject-step {args.inject_step}" if args.inject else "")
              + f"\n\n{type(e).__name__}: {e}\n", file=sys.stderr)
        if soak:
            print("last steps:\n" + "\n".join(f"  {h}" for h in soak.history), file=sys.stderr)
            print("\nconsole tail:\n" + "\n".join(f"  {line[:300]}" for line in soak.g.received[-25:]),
                  file=sys.stderr)
        serial = "\n".join(line[:300] for line in vm.tail(lines=30).splitlines())
        print(f"\nserial log tail ({vm.serial_log}):\n{serial}\n"
              f"qemu stderr:\n{vm.tail(vm.stderr_log, 10)}\nwork directory kept: {workdir}", file=sys.stderr)
        return 1
    finally:
        vm.kill()


if __name__ == "__main__":
    sys.exit(main())

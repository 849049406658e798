"""Balloon inflate and deflate end to end: QMP's `balloon` target, `query-balloon`,
BALLOON_CHANGE events and the guest stats, against the guest's own page accounting
(`mem show`), modelled exactly (see inflate_helpers.py for the facts it rests on).

QEMU behaviours observed here (7.2 and 10.0 alike):
- `balloon value=0` is rejected (GenericError); 1 is the smallest value accepted, and
  asks for (ram - 1) >> 12 pages, more than the guest has. A value above the RAM size
  is clamped to it (num_pages 0).
- BALLOON_CHANGE is rate-limited to one a second: an inflate of 64k pages in ~0.1 s
  gives one or two events, the last carrying the final actual.
"""

from __future__ import annotations

import os
import random
import re
from typing import Dict

import pytest

from ballast_qemu import BallastVM, parse_kv
from balloon_stats import LINE_TIMEOUT, Balloon, plain_tags, up_line
from boot_paths import FASTEST, MICROVM_MMIO_MODERN, BootPath
from inflate_helpers import (heap_pages, BOOT_TIMEOUT, HUGE_PAGES, MAX_LATE_CHUNKS, PAGE, RESERVE_PAGES, Baseline, Host,
                             MiB, assert_invariants, chunk_pages, console, hold_lines, hold_pattern, mem_show,
                             settled, transcript, wait_line)
from hosts import HOST, parse_stats_lines
from stats_exact import ballast_view, diff

DOOM = "deflate-on-oom=on"
STATS_TIMEOUT = 8  # polling every second, TCG on a busy 2-core box
CORE = ("usable", "managed", "free", "allocated", "offline", "free_blocks", "heap_pages", "page_tables")


def boot(ballast_vm, memory: str, path: BootPath = FASTEST, device_opts: str = "", **kwargs) -> BallastVM:
    vm = ballast_vm(memory=memory, **path.vm_kwargs(device_opts, **kwargs))
    vm.wait_ready(BOOT_TIMEOUT)
    return vm


def start_stats(vm: BallastVM) -> Balloon:
    bal = Balloon(vm)
    assert bal.set_interval(1) == {}
    return bal


def stats_seq(vm: BallastVM) -> int:
    answer = console(vm, "stats show")
    kv = parse_kv(answer)  # the guest may add keys; these must be there
    assert answer.startswith("ok seq=") and kv.get("paused") == "0" and kv.get("failed") == "0", \
        f"'stats show' answered {answer!r}"
    return int(kv["seq"])


def next_stats(vm: BallastVM, bal: Balloon) -> Dict[str, int]:
    """The values of a stats answer the guest gave after this call, as the host holds
    them, checked to be what the host's profile makes of the guest's line for it.

    The guest adds and kicks each buffer with interrupts off, and under TCG the host
    parses it during the kick; `stats show` runs with interrupts off too. So if show
    says n before and after a qom-get, the host holds buffer n. The guest's line for
    n comes a little later (the log never delays an answer); it is taken from the
    console transcript (serial.log can carry doubled characters)."""
    seq0 = stats_seq(vm)
    def newer():
        before = stats_seq(vm)
        host = bal.stats()
        return (before, host) if before > seq0 and stats_seq(vm) == before else None
    seq, host = vm.wait_until(newer, STATS_TIMEOUT, f"a stats answer after seq={seq0}", interval=0.2)
    sent = vm.wait_until(lambda: parse_stats_lines(transcript(vm)).get(seq), LINE_TIMEOUT,
                         f"the guest's line for stats seq={seq}")
    assert plain_tags(sent), f"seq={seq} is not ballast's plain buffer: {sent}"
    HOST.expect(f"guest-stats after plain buffer seq={seq}", host["stats"], HOST.shows(sent))
    return host["stats"]


def assert_stats_match(stats: Dict[str, int], m: Dict, what: str) -> None:
    """The stats the guest sent while at rest are exactly its counters at rest."""
    want = ballast_view(m)
    assert stats == want, f"{what}: stats differ from mem show: {diff(stats, want)} (got, want)"


def core(m: Dict) -> Dict:
    return {k: m[k] for k in CORE}


def alloc(vm: BallastVM, pages: int, timeout: float = 30) -> int:
    answer = console(vm, f"mem alloc {pages * PAGE}", timeout=timeout)
    m = re.fullmatch(r"ok id=(\d+) bytes=(\d+) blocks=(\d+)", answer)
    assert m and int(m.group(2)) == pages * PAGE, f"mem alloc {pages * PAGE}: {answer!r}"
    return int(m.group(1))


# ---- 1. a lower target and back -------------------------------------------------------


def test_inflate_to_lower_target_and_back(ballast_vm, boot_path):
    """512 MiB guest ballooned to 256 MiB: events, actual, and the stats drop by exactly
    the ballooned pages (total) and the ballooned pages plus their tracking pages (free);
    deflating restores every counter."""
    ram = 512 * MiB
    vm = boot(ballast_vm, "512M", boot_path)
    host, bal = Host(vm, ram), start_stats(vm)
    assert host.take_events() == [], "BALLOON_CHANGE before any target was set"
    m0 = settled(vm, host, False, target=0)
    base = Baseline.of(m0)
    s0 = next_stats(vm, bal)
    assert_stats_match(s0, m0, "before inflating")
    assert m0["managed"] == m0["usable"] and host.actual() == ram

    value = 256 * MiB
    want = host.balloon(value)
    assert want == (ram - value) // PAGE == 65536
    took = host.wait_actual(value)
    events = host.wait_event(value)
    actuals = [e["data"]["actual"] for e in events]
    print(f"inflate {want} pages: actual reached in {took:.3f}s; {len(events)} BALLOON_CHANGE events {actuals}")
    assert actuals == sorted(actuals, reverse=True) and all(value <= a < ram for a in actuals), actuals
    assert actuals[-1] == value
    wait_line(vm, rf"host target num_pages={want} \(balloon holds 0\)$", 5)

    m1 = settled(vm, host, False, target=want)
    assert m1["balloon_pages"] == want and m1["offline"] == want
    assert m1["managed"] == m0["managed"] - want
    tracking = m1["allocated"] - m0["allocated"]
    assert tracking == chunk_pages(want) == 65, f"tracking pages: {tracking}"
    base.assert_allocated(m1, 0, False, "inflated")
    assert m1["free"] == m0["free"] - want - tracking
    s1 = next_stats(vm, bal)
    assert_stats_match(s1, m1, "inflated")
    assert s1["stat-total-memory"] == s0["stat-total-memory"] - want * PAGE
    assert s1["stat-free-memory"] == s0["stat-free-memory"] - (want + tracking) * PAGE
    assert s1["stat-available-memory"] == s0["stat-available-memory"] - (want + tracking) * PAGE

    assert host.balloon(ram) == 0
    took = host.wait_actual(ram)
    events = host.wait_event(ram)
    actuals = [e["data"]["actual"] for e in events]
    print(f"deflate {want} pages: actual reached in {took:.3f}s; {len(events)} BALLOON_CHANGE events {actuals}")
    assert actuals == sorted(actuals) and all(value < a <= ram for a in actuals) and actuals[-1] == ram, actuals
    m2 = settled(vm, host, False, target=0)
    assert core(m2) == core(m0), "deflating back did not restore the allocator's state"
    assert m2["balloon_inflated_total"] == m2["balloon_deflated_total"] == want
    s2 = next_stats(vm, bal)
    assert_stats_match(s2, m2, "deflated")
    for k in ("stat-free-memory", "stat-total-memory", "stat-available-memory"):
        assert s2[k] == s0[k], f"{k}: {s2[k]} after deflating, {s0[k]} before inflating"


# ---- 2. a target below the reserve ----------------------------------------------------


def test_target_below_reserve_holds_and_recovers(ballast_vm, boot_path):
    """A target the reserve does not allow: the guest holds with 2048 free pages (less
    the tracking pages of PFNs still on the ring), says so once per target, keeps
    answering; a freed allocation is ballooned at the next retry; the smallest value
    QEMU takes (1) holds where it is; raising the target deflates everything."""
    ram = 512 * MiB
    vm = boot(ballast_vm, "512M", boot_path)
    host, bal = Host(vm, ram), start_stats(vm)
    r = host.balloon_raw(0)
    assert r.get("error", {}).get("class") == "GenericError", f"balloon value=0: {r}"
    m0 = settled(vm, host, False, target=0)
    base = Baseline.of(m0)
    s0 = next_stats(vm, bal)
    assert_stats_match(s0, m0, "before inflating")

    held_id = alloc(vm, 2048)  # freed later: a retry must balloon it
    # Half a chunk of PFNs more than the guest can give even after freeing the held
    # allocation (the boot path decides how much RAM the firmware keeps).
    want = m0["free"] - RESERVE_PAGES + 512
    assert host.balloon(ram - want * PAGE) == want
    wait_line(vm, hold_pattern(want), 30)
    m1 = settled(vm, host, False, target=want)
    p1 = m1["balloon_pages"]
    assert p1 < want
    assert RESERVE_PAGES - MAX_LATE_CHUNKS <= m1["free"] <= RESERVE_PAGES, f"held with free={m1['free']}"
    base.assert_allocated(m1, 2048, False, "held at the reserve")
    assert hold_lines(vm, want) == [(want, RESERVE_PAGES, p1)]
    assert console(vm, "help").startswith("ok commands=")
    host.wait_event(ram - p1 * PAGE)
    s1 = next_stats(vm, bal)
    assert_stats_match(s1, m1, "held")
    assert s1["stat-total-memory"] == s0["stat-total-memory"] - p1 * PAGE

    assert console(vm, f"mem free {held_id}") == f"ok freed={2048 * PAGE} allocations=1"
    m2 = settled(vm, host, False, target=want, timeout=15, extra=lambda m: m["balloon_pages"] > p1)
    p2 = m2["balloon_pages"]
    assert p2 < want and RESERVE_PAGES - MAX_LATE_CHUNKS <= m2["free"] <= RESERVE_PAGES
    base.assert_allocated(m2, 0, False, "held again after the retry")
    assert hold_lines(vm, want) == [(want, RESERVE_PAGES, p1)], "a retry logged the hold again"

    lowest = host.balloon(1)
    assert lowest == (ram - 1) >> 12 == 131071 and lowest > m2["usable"]
    wait_line(vm, rf"host target num_pages={lowest} \(balloon holds {p2}\), more than the guest's memory$", 10)
    wait_line(vm, hold_pattern(lowest), 10)
    m3 = settled(vm, host, False, target=lowest)
    assert hold_lines(vm, lowest) == [(lowest, RESERVE_PAGES, p2)]
    assert core(m3) == core(m2) and m3["balloon_pages"] == p2
    assert host.actual() == ram - p2 * PAGE
    s3 = next_stats(vm, bal)
    assert_stats_match(s3, m3, "held at value=1")
    assert s3["stat-total-memory"] == s0["stat-total-memory"] - p2 * PAGE

    assert host.balloon(2 * ram) == 0  # clamped to the RAM size
    host.wait_actual(ram)
    m4 = settled(vm, host, False, target=0)
    base.assert_allocated(m4, 0, False, "deflated")
    assert m4["managed"] == m0["managed"] and m4["offline"] == 0
    assert m4["balloon_deflated_total"] == m4["balloon_inflated_total"] == p2
    s4 = next_stats(vm, bal)
    assert_stats_match(s4, m4, "deflated")
    assert s4["stat-total-memory"] == s0["stat-total-memory"]


def test_reserve_hold_survives_heap_growth(ballast_vm, boot_path):
    """The reserve is there for the kernel's own growth ("page tables, heap growth and
    console work"): with the balloon holding at it, a heap that grows past the free
    pages must not take the kernel down; the command answers (ok or err) and the
    guest keeps its accounting and its balloon."""
    ram = 256 * MiB
    vm = boot(ballast_vm, "256M", boot_path)
    host = Host(vm, ram)
    lowest = host.balloon(1)
    m1 = settled(vm, host, False, target=lowest)
    assert m1["free"] <= RESERVE_PAGES and m1["balloon_pages"] < lowest
    # More than is free: sbrk takes all the pages a growth needs or none, so
    # malloc fails and nothing is kept (the reserve is not the heap's to take).
    size = 4 * RESERVE_PAGES * PAGE
    assert console(vm, f"mem touch {size}", timeout=15) == f"err heap cannot grow by {size} bytes"
    m2 = settled(vm, host, False, target=lowest)
    assert core(m2) == core(m1), diff(core(m2), core(m1))
    assert m2["balloon_pages"] == m1["balloon_pages"]
    assert host.actual() == ram - m1["balloon_pages"] * PAGE


# ---- 3. deflate on OOM ----------------------------------------------------------------


def test_deflate_on_oom(ballast_vm, boot_path):
    """deflate-on-oom=on: ballooned pages stay in total memory; an allocation larger
    than free memory succeeds by deflating in batches of 256 freed pages, and the host
    sees actual grow; once the allocation is freed the balloon goes back to the target."""
    ram = 512 * MiB
    vm = boot(ballast_vm, "512M", boot_path, DOOM)
    assert up_line(vm)["deflate_on_oom"] == "on"
    host, bal = Host(vm, ram), start_stats(vm)
    m0 = settled(vm, host, True, target=0)
    base = Baseline.of(m0)
    s0 = next_stats(vm, bal)
    assert_stats_match(s0, m0, "before inflating")
    total = s0["stat-total-memory"]
    assert total == m0["usable"] * PAGE

    value = 256 * MiB
    want = host.balloon(value)
    host.wait_actual(value)
    host.wait_event(value)
    m1 = settled(vm, host, True, target=want)
    assert m1["balloon_pages"] == want and m1["managed"] == m0["managed"] and m1["offline"] == 0
    base.assert_allocated(m1, 0, True, "inflated")
    assert m1["free"] == m0["free"] - want - chunk_pages(want)
    s1 = next_stats(vm, bal)
    assert_stats_match(s1, m1, "inflated")
    assert s1["stat-total-memory"] == total, "ballooned pages left total memory with deflate-on-oom"
    assert s1["stat-free-memory"] == s0["stat-free-memory"] - (want + chunk_pages(want)) * PAGE

    deficit = 4096
    n = m1["free"] + deficit
    alloc_id = alloc(vm, n)
    m2 = mem_show(vm)
    assert_invariants(m2, True, "after the allocation")
    d, o = m2["oom_deflates"], m2["oom_pages"]
    assert d >= 1 and m2["alloc_failures"] == m1["alloc_failures"], m2
    # Each OOM call deflates 256 PFNs, as Linux. What they free: those pages but
    # the ones that became pages of the list of PFNs to tell the host (one per
    # 1020), plus the store pages they emptied. The allocation needed the last
    # call, and no more: at most 257 (256 and a store page) came with it.
    assert o == 256 * d, f"oom_pages={o} oom_deflates={d}"
    kernel = (heap_pages(m2) - heap_pages(m1)) + (m2["page_tables"] - m1["page_tables"])
    freed = o - chunk_pages(o) + chunk_pages(want) - chunk_pages(want - o)
    assert freed - 257 < deficit + kernel <= freed, \
        f"{d} OOM deflates ({freed} pages freed) for a deficit of {deficit} pages (+{kernel} kernel pages)"

    after = ram - (want - o) * PAGE
    host.wait_actual(after)
    events = host.wait_event(after)
    assert events[-1]["data"]["actual"] == after > value
    m3 = settled(vm, host, True, target=want)
    assert m3["balloon_pages"] == want - o and m3["free"] <= RESERVE_PAGES
    assert hold_lines(vm, want) == [(want, RESERVE_PAGES, want - o)]
    base.assert_allocated(m3, n, True, "after the OOM deflate")
    s3 = next_stats(vm, bal)
    assert_stats_match(s3, m3, "after the OOM deflate")
    assert s3["stat-total-memory"] == total

    assert console(vm, f"mem free {alloc_id}") == f"ok freed={n * PAGE} allocations=1"
    host.wait_actual(value)  # a retry takes the pages again
    m4 = settled(vm, host, True, target=want)
    assert m4["balloon_pages"] == want and m4["oom_deflates"] == d
    base.assert_allocated(m4, 0, True, "re-inflated")
    s4 = next_stats(vm, bal)
    assert_stats_match(s4, m4, "re-inflated")
    assert s4["stat-total-memory"] == total


# ---- 4. a random sequence -------------------------------------------------------------

RANDOM_STEPS = int(os.environ.get("BALLAST_INFLATE_STEPS", "100"))
RANDOM_SEED = int(os.environ.get("BALLAST_INFLATE_SEED", "4242"))
ALLOC_SLACK = 16  # pages the console's own bookkeeping may take (heap, page tables)


class RandomRun:
    """One random sequence against one guest: the model (allocations held, target)
    and one step at a time, each described in `history` as it is sent."""

    def __init__(self, vm: BallastVM, host: Host, rng: random.Random, doom: bool):
        self.vm, self.host, self.rng, self.doom = vm, host, rng, doom
        self.m = settled(vm, host, doom, target=0)
        self.base = Baseline.of(self.m)
        self.held: Dict[int, int] = {}  # allocation id -> pages
        self.target = 0
        self.counts: Dict[str, int] = {}
        self.history: list = []

    def value(self) -> int:
        r, ram = self.rng.random(), self.host.ram
        if r < 0.15:
            return ram
        if r < 0.3:
            return self.rng.randint(1, 12 * MiB)  # below the reserve
        return max(1, ram - self.rng.randint(0, self.m["usable"]) * PAGE - self.rng.randrange(PAGE))

    def step(self) -> None:
        vm, rng, doom, before = self.vm, self.rng, self.doom, self.m
        kind = rng.choices(["balloon", "burst", "alloc", "free", "huge"], weights=[3, 1, 3, 2, 1])[0]
        if kind == "free" and not self.held:
            kind = "alloc"
        if kind in ("alloc", "huge") and len(self.held) >= 48:
            kind = "free"
        failures = 0  # alloc_failures this step must add
        huge = None

        if kind in ("balloon", "burst"):
            # a burst changes the target while buffers of the previous one are in flight
            values = [self.value() for _ in range(1 if kind == "balloon" else rng.randint(2, 4))]
            self.history.append(f"{kind}: balloon value={values}")
            for v in values:
                self.target = self.host.balloon(v)
        elif kind == "alloc":
            r = rng.random()
            if r < 0.4:
                pages = rng.randint(1, 64)
            elif r < 0.7:
                pages = rng.randint(65, 4096)
            else:  # around what is free, or free plus the balloon
                pages = max(1, before["free"] + (before["balloon_pages"] if doom else 0) + rng.randint(-256, 256))
            self.history.append(f"mem alloc {pages * PAGE}  ({pages} pages; free={before['free']} "
                                f"balloon_pages={before['balloon_pages']})")
            answer = console(vm, f"mem alloc {pages * PAGE}", timeout=30)
            self.history[-1] += f" -> {answer}"
            # With deflate-on-oom the balloon's pages and their tracking pages can be
            # had too, less the pages that track the PFNs the host is still to be told.
            bal = before["balloon_pages"] if doom else 0
            room = before["free"] + bal + chunk_pages(bal)
            if answer.startswith("ok"):
                a = parse_kv(answer)
                assert int(a["bytes"]) == pages * PAGE, answer
                assert pages <= room, f"more than free (+ balloon) was allocated: {before}"
                self.held[int(a["id"])] = pages
                kind = "alloc-ok"
            else:
                assert re.fullmatch(rf"err out of memory after \d+ of {pages * PAGE} bytes; nothing kept", answer)
                assert pages + ALLOC_SLACK + chunk_pages(bal) > room, f"failed with room for it: {before}"
                kind, failures = "alloc-oom", 1
        elif kind == "free":
            if rng.random() < 0.1:
                pages, count = sum(self.held.values()), len(self.held)
                self.history.append("mem free all")
                answer = console(vm, "mem free all")
                self.held.clear()
            else:
                fid = rng.choice(sorted(self.held))
                pages, count = self.held.pop(fid), 1
                self.history.append(f"mem free {fid}")
                answer = console(vm, f"mem free {fid}")
            self.history[-1] += f" -> {answer}"
            assert answer == f"ok freed={pages * PAGE} allocations={count}"
        else:
            n = rng.randint(1, 6)
            self.history.append(f"mem huge {n}  (free_blocks={before['free_blocks']})")
            answer = console(vm, f"mem huge {n}", timeout=30)
            self.history[-1] += f" -> {answer}"
            h = re.fullmatch(r"ok id=(\d+) allocated=(\d+) failed=(\d+)", answer)
            assert h, answer
            huge = got, failed = int(h.group(2)), int(h.group(3))
            assert got + failed == n
            self.held[int(h.group(1))] = got * HUGE_PAGES
            failures = failed
        self.counts[kind] = self.counts.get(kind, 0) + 1

        held = sum(self.held.values())
        # with deflate-on-oom, pages that track PFNs the host is still to be told of
        # are freed only once told: wait for the model rather than for the first rest
        extra = (lambda x: x["allocated"] == self.base.expected_allocated(x, held, doom)) if doom else None
        m = self.m = settled(vm, self.host, doom, target=self.target, timeout=20, extra=extra)
        self.base.assert_allocated(m, held, doom)
        assert self.host.actual() == self.host.ram - m["balloon_pages"] * PAGE
        assert m["balloon_pages"] <= self.target, m
        assert m["alloc_failures"] - before["alloc_failures"] == failures, m
        # a failed mem alloc is a workload the OOM killer ends
        assert m["oom_kills"] - before["oom_kills"] == (kind == "alloc-oom"), m
        if huge:
            got, failed = huge
            assert (m["huge_allocs"] - before["huge_allocs"], m["huge_failures"] - before["huge_failures"]) == huge
            if not doom:  # (with deflate-on-oom a failure deflates, which may free a block)
                # only free 2 MiB blocks can be had; the one the record of the
                # allocation split for the heap or a page table, if any, is gone
                blocks = before["free_blocks"][-1]
                grew = heap_pages(m) + m["page_tables"] > heap_pages(before) + before["page_tables"]
                assert got in ({min(got + failed, blocks), min(got + failed, blocks - 1)} if grew
                               else {min(got + failed, blocks)}), f"kernel pages grew: {grew}"
        if not doom:
            assert m["managed"] == self.base.managed - m["balloon_pages"]


@pytest.mark.parametrize("doom", [False, True], ids=["offline", "deflate-on-oom"])
def test_random_sequence(ballast_vm, boot_path, doom):
    """Balloon targets (single, and bursts that change it mid-flight) mixed with
    allocations, frees and 2 MiB allocations; after every step the balloon settles and
    the whole page accounting is checked exactly against the model and QMP."""
    seed = RANDOM_SEED + doom
    print(f"seed={seed} steps={RANDOM_STEPS} (BALLAST_INFLATE_SEED={RANDOM_SEED}, deflate-on-oom={doom})")
    ram = 256 * MiB
    vm = boot(ballast_vm, "256M", boot_path, DOOM if doom else "")
    host = Host(vm, ram)
    run = RandomRun(vm, host, random.Random(seed), doom)
    for step in range(RANDOM_STEPS):
        try:
            run.step()
        except (AssertionError, TimeoutError) as e:
            steps = "\n".join(f"  {i}: {h}" for i, h in enumerate(run.history))
            raise AssertionError(f"seed={seed}: step {step} failed: {e}\nsteps:\n{steps}") from None
    m = run.m
    print(f"steps by kind: {run.counts}; final balloon_pages={m['balloon_pages']} inflated_total="
          f"{m['balloon_inflated_total']} deflated_total={m['balloon_deflated_total']} "
          f"oom_deflates={m['oom_deflates']} oom_pages={m['oom_pages']}")
    assert console(vm, "mem free all") == \
        f"ok freed={sum(run.held.values()) * PAGE} allocations={len(run.held)}"
    host.balloon(ram)
    m = settled(vm, host, doom, target=0)
    run.base.assert_allocated(m, 0, doom, "everything freed and deflated")
    assert m["managed"] == run.base.managed and m["free"] + m["allocated"] == run.base.free + run.base.allocated


# ---- 5. transports --------------------------------------------------------------------

# The PCI transport variants; the default transport of each machine is covered by the
# tests above, which run on every boot path.
TRANSPORTS = [
    pytest.param("q35", "disable-modern=on", "pci-legacy", id="q35-legacy"),
    pytest.param("q35", "disable-legacy=on", "pci-modern", id="q35-modern-only"),
    pytest.param("pc", "disable-modern=on", "pci-legacy", id="pc-legacy"),
    pytest.param("microvm", "", "mmio-modern", id="microvm-mmio-modern"),
]


@pytest.mark.parametrize("machine,opts,transport", TRANSPORTS)
def test_inflate_deflate_transports(ballast_vm, machine, opts, transport):
    """64 MiB in and out on every transport: the host's actual is the guest's page
    count times 4 KiB, and the guest's memory drops by that many 4 KiB pages."""
    ram, size = 256 * MiB, 64 * MiB
    path = MICROVM_MMIO_MODERN if machine == "microvm" else BootPath("pvh", machine)
    vm = boot(ballast_vm, "256M", path, opts)
    assert up_line(vm)["transport"] == transport
    host = Host(vm, ram)
    m0 = settled(vm, host, False, target=0)
    base = Baseline.of(m0)
    want = host.balloon(ram - size)
    assert want == size // PAGE
    host.wait_actual(ram - size)
    m1 = settled(vm, host, False, target=want)
    assert m1["balloon_pages"] == want and (ram - host.actual()) == m1["balloon_pages"] * PAGE == size
    assert m1["managed"] == m0["managed"] - want and m1["offline"] == want
    base.assert_allocated(m1, 0, False, "inflated")
    assert m1["free"] == m0["free"] - want - chunk_pages(want)
    host.balloon(ram)
    host.wait_actual(ram)
    m2 = settled(vm, host, False, target=0)
    assert core(m2) == core(m0)
    assert m2["balloon_inflated_total"] == m2["balloon_deflated_total"] == want


# ---- 6. speed -------------------------------------------------------------------------


def test_half_of_ram_three_times(ballast_vm):
    """512 MiB out of a 1 GiB guest and back, three times (what the bench times for
    its throughput figures; here only checked): every page goes out and comes back,
    exactly, each time."""
    ram, size = 1024 * MiB, 512 * MiB
    pages = size // PAGE
    vm = boot(ballast_vm, "1G")
    host = Host(vm, ram)
    m0 = settled(vm, host, False, target=0)
    for cycle in range(1, 4):
        host.balloon(ram - size)
        host.wait_actual(ram - size, timeout=60)
        m = settled(vm, host, False, target=pages)
        assert (m["balloon_pages"], m["offline"], m["managed"]) == (pages, pages, m0["managed"] - pages), m
        assert m["balloon_inflated_total"] == m0["balloon_inflated_total"] + cycle * pages
        host.balloon(ram)
        host.wait_actual(ram, timeout=60)
        m = settled(vm, host, False, target=0)
        assert core(m) == core(m0), diff(core(m), core(m0))
        assert m["balloon_deflated_total"] == m0["balloon_deflated_total"] + cycle * pages

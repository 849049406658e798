"""The reclaimable page cache (`cache ...`) and the reclaim counters, with the balloon
stats the host shows for them (disk caches, available memory; and on QEMU 9.2 and later
tags 10-15) compared exactly with `mem show` for the same buffer.

Guest facts (kernel/mm/cache.c, kernel/mm/mm.c page_alloc, kernel/mm/mm_console.c):
- `cache grow` takes free pages only (no reclaim), one page at a time.
- An order-0 allocation the free lists cannot serve stalls once and reclaims two cache
  pages (direct: scanned = reclaimed); `mem alloc` asks for order 0 whenever no larger
  free block is left, so under pressure every stall reclaims exactly 2 pages.
- Every 100 ms, if free < low watermark (managed / 64, at least 256) and the cache is
  not empty, the cache is reclaimed by (high watermark - free) pages (async).
- `mem alloc` that runs out keeps nothing and counts one OOM kill; what stays allocated
  is the heap (and page tables) its block list needed.
Tags 10-15 (oom kills, stalls, scan/reclaim) are on the guest's line always, and on the
host where its profile shows them (QEMU 7.2 drops them).
"""

from __future__ import annotations

import re

import pytest

from hosts import HOST
from stats_exact import (BOOT_TIMEOUT, PAGE, POLLING_1S, Snapshot, StatsGuest, ballast_view, diff)

ASYNC_TIMEOUT = 2.0  # the balance check runs every 100 ms
COUNTERS = ("direct_scan", "direct_reclaim", "async_scan", "async_reclaim", "alloc_stalls", "oom_kills")


@pytest.fixture
def g(ballast_vm):
    vm = ballast_vm(boot="pvh", devices=POLLING_1S)
    vm.wait_ready(BOOT_TIMEOUT)
    return StatsGuest(vm)


def after(g: StatsGuest) -> Snapshot:
    """Host stats of a buffer built after everything done so far, exactly as the
    guest logged it and as `mem show` says (nothing unset)."""
    seq, lu = g.show()["seq"], g.host()["last-update"]
    snap = g.next_update(seq, lu)
    g.assert_exact(snap, ballast_view(snap.mem))
    return snap


def deltas(a: dict, b: dict, keys=COUNTERS) -> dict:
    return {k: b[k] - a[k] for k in keys}


def cache_matches_mem(c: dict, mem: dict) -> None:
    """`cache show` and `mem show` tell the same counters."""
    for k in ("cached",) + COUNTERS:
        assert c[k] == mem[k], f"cache show {k}={c[k]}, mem show {k}={mem[k]}"


def test_grow_and_drop(g):
    base = after(g)
    assert base.mem["cached"] == 0 and base.stats["stat-disk-caches"] == 0
    c0 = g.cache()
    assert g.cmd("cache grow 64M") == "ok grown=16384 wanted=16384 cached=16384"
    grown = after(g)
    # Exactly 64 MiB more cache, taken from free memory; available is unchanged.
    assert grown.mem["cached"] == 16384
    assert grown.stats["stat-disk-caches"] - base.stats["stat-disk-caches"] == 16384 * PAGE
    assert grown.stats["stat-free-memory"] == base.stats["stat-free-memory"] - 16384 * PAGE
    assert grown.stats["stat-available-memory"] == base.stats["stat-available-memory"]
    assert grown.stats["stat-available-memory"] == (grown.mem["free"] + grown.mem["cached"]) * PAGE
    # Far above the low watermark: nothing was reclaimed.
    c1 = g.cache()
    assert deltas(c0, c1) == dict.fromkeys(COUNTERS, 0)
    cache_matches_mem(c1, grown.mem)
    # Dropping is not reclaim; the stats are those of boot again.
    assert g.cmd("cache drop") == "ok dropped=16384"
    dropped = after(g)
    assert dropped.stats == base.stats, diff(dropped.stats, base.stats)
    assert deltas(c0, g.cache()) == dict.fromkeys(COUNTERS, 0)


def test_pressure_direct_reclaim(g):
    assert g.ok("cache grow 64M") == "ok grown=16384 wanted=16384 cached=16384"
    before = after(g)
    c0 = g.cache()
    # More than is free, less than free + cache: served by reclaiming the cache.
    pages = before.mem["free"] + 2048
    m = re.fullmatch(r"ok id=(\d+) bytes=(\d+) blocks=(\d+)", g.cmd(f"mem alloc {pages * PAGE}"))
    assert m, g.received[-1]
    assert int(m.group(2)) == pages * PAGE
    # The allocation left free memory below the low watermark: async reclaim brings
    # it back to the high one.
    c1 = g.vm.wait_until(lambda: (c := g.cache())["async_reclaim"] > c0["async_reclaim"] and c,
                         ASYNC_TIMEOUT, "async reclaim after the allocation")
    d = deltas(c0, c1)
    assert d["alloc_stalls"] > 0 and d["direct_reclaim"] > 0, d
    assert d["direct_scan"] == d["direct_reclaim"] == 2 * d["alloc_stalls"], d
    assert d["async_scan"] == d["async_reclaim"], d
    assert d["oom_kills"] == 0, d
    assert c0["cached"] - c1["cached"] == d["direct_reclaim"] + d["async_reclaim"], (c0, c1)
    mem = after(g).mem
    assert mem["free"] == c1["high_watermark"], (mem["free"], c1)
    assert mem["alloc_failures"] == before.mem["alloc_failures"], "a reclaimed allocation counted as failed"
    cache_matches_mem(g.cache(), mem)
    # Freed, the memory is free again; the cache stays as small as reclaim left it.
    assert g.cmd(f"mem free {m.group(1)}") == f"ok freed={pages * PAGE} allocations=1"
    freed = after(g)
    assert freed.mem["cached"] == c1["cached"]
    assert freed.stats["stat-disk-caches"] == c1["cached"] * PAGE


def test_async_reclaim(g):
    c0 = g.cache()
    free0 = g.mem()["free"]
    assert free0 > c0["high_watermark"]
    # Ask for more than is free: the cache takes every free page.
    m = re.fullmatch(r"ok grown=(\d+) wanted=(\d+) cached=(\d+)", g.cmd("cache grow 128M"))
    assert m, g.received[-1]
    grown, wanted, cached = map(int, m.groups())
    assert (grown, wanted, cached) == (free0, 32768, free0)
    # Free is 0 now, below the low watermark: within a few 100 ms ticks async
    # reclaim gives back exactly (high watermark - 0) pages, once.
    c1 = g.vm.wait_until(lambda: (c := g.cache())["async_reclaim"] > c0["async_reclaim"] and c,
                         ASYNC_TIMEOUT, "async reclaim")
    d = deltas(c0, c1)
    assert d == dict(direct_scan=0, direct_reclaim=0, async_scan=c1["high_watermark"],
                     async_reclaim=c1["high_watermark"], alloc_stalls=0, oom_kills=0), d
    snap = after(g)
    assert snap.mem["free"] == c1["high_watermark"] >= c1["low_watermark"]
    assert snap.mem["cached"] == free0 - c1["high_watermark"] == c1["cached"]
    assert snap.stats["stat-disk-caches"] == snap.mem["cached"] * PAGE
    assert snap.stats["stat-available-memory"] == free0 * PAGE
    cache_matches_mem(g.cache(), snap.mem)


def test_oom_kill(g):
    base = after(g)
    c0 = g.cache()
    assert (base.mem["cached"], base.mem["balloon_pages"], base.mem["deflate_on_oom"]) == (0, 0, 0)
    # More than is free (with no cache and no balloon to take from), within usable.
    pages = base.mem["free"] + 50
    assert pages <= base.mem["usable"]
    answer = g.cmd(f"mem alloc {pages * PAGE}")
    m = re.fullmatch(r"err out of memory after (\d+) of (\d+) bytes; nothing kept", answer)
    assert m, answer
    got, wanted = int(m.group(1)), int(m.group(2))
    assert wanted == pages * PAGE and got < base.mem["free"] * PAGE and got % PAGE == 0
    c1 = g.cache()
    assert deltas(c0, c1) == dict(direct_scan=0, direct_reclaim=0, async_scan=0, async_reclaim=0,
                                  alloc_stalls=0, oom_kills=1)
    snap = after(g)
    mem = snap.mem
    assert mem["oom_kills"] == base.mem["oom_kills"] + 1
    assert mem["alloc_failures"] == base.mem["alloc_failures"] + 1
    # Nothing kept: only the heap pages (touched, or reserved at sbrk where the
    # kernel reports `heap_reserved`) and page tables the block list needed.
    kept = sum(mem[k] - base.mem[k] for k in ("heap_pages", "heap_reserved", "page_tables"))
    assert mem["allocated"] - base.mem["allocated"] == kept, (base.mem, mem)
    # ... and those pages hold nothing: the block list went back to malloc.
    assert mem["heap_in_use"] == base.mem["heap_in_use"], (
        f"the killed allocation left {mem['heap_in_use'] - base.mem['heap_in_use']} bytes on the heap")
    assert mem["free"] == base.mem["free"] - kept
    # The stats: no cache, available = free.
    assert snap.stats["stat-disk-caches"] == 0
    assert snap.stats["stat-available-memory"] == snap.stats["stat-free-memory"] == mem["free"] * PAGE
    # The guest goes on: a fitting allocation works and is not an OOM kill.
    a = re.fullmatch(r"ok id=(\d+) bytes=1048576 blocks=\d+", g.cmd("mem alloc 1M"))
    assert a, "mem alloc 1M after the OOM kill"
    assert g.cache()["oom_kills"] == c1["oom_kills"]
    assert g.cmd(f"mem free {a.group(1)}") == "ok freed=1048576 allocations=1"
    assert g.mem()["heap_in_use"] == base.mem["heap_in_use"]



def test_heap_growth_that_cannot_fit_keeps_nothing(g):
    """A `mem touch` the free pages cannot back fails whole (kernel/mm/heap.c): sbrk
    takes the pages first, then the page tables the range needs, and gives both back
    when either runs out, so the guest is left exactly as it was."""
    base = g.mem()
    assert (base["cached"], base["balloon_pages"]) == (0, 0)
    free = base["free"]
    # Twice the free pages: the pages run out. Eight pages short of the free ones: the
    # pages fit, the ~free/512 page tables do not (the path that once kept them).
    for pages in (2 * free, free - 8):
        size = pages * PAGE
        assert g.cmd(f"mem touch {size}") == f"err heap cannot grow by {size} bytes"
        m = g.mem()
        kept = {k: (base[k], m[k]) for k in ("free", "allocated", "page_tables", "heap_bytes", "heap_pages",
                                              "heap_reserved", "heap_in_use", "offline") if m[k] != base[k]}
        assert not kept, f"a failed mem touch of {pages} pages kept {kept} (before, after)"
        assert m["alloc_failures"] == base["alloc_failures"] + 1, (base["alloc_failures"], m["alloc_failures"])
        base = m
    # The guest goes on: a growth that fits works and gives back all it held.
    a = re.fullmatch(r"ok id=(\d+) bytes=1048576 minor_faults=256", g.cmd("mem touch 1M"))
    assert a, g.received[-1]
    assert g.cmd(f"mem free {a.group(1)}") == "ok freed=1048576 allocations=1"
    assert g.mem()["heap_in_use"] == base["heap_in_use"]
    after(g)


def test_all_sixteen(g):
    """Tags 10-15 moved by real work, each checked on the guest's line against `mem show`
    and `cache show`, and on the host as its profile says (QEMU 9.2 and later show all
    sixteen; 7.2 drops 10-15): an OOM kill (oom-kills), an allocation served by direct
    reclaim (alloc-stalls, direct scans and reclaims, in bytes), and the async reclaim it
    leaves behind (async scans and reclaims)."""
    base = after(g)
    # one OOM kill: more than is free, nothing to reclaim
    pages = base.mem["free"] + 50
    assert g.cmd(f"mem alloc {pages * PAGE}").startswith("err out of memory after ")
    # direct reclaim and stalls, then async reclaim back to the high watermark
    assert g.ok("cache grow 64M") == "ok grown=16384 wanted=16384 cached=16384"
    c0 = g.cache()
    pages = g.mem()["free"] + 2048
    m = re.fullmatch(r"ok id=(\d+) bytes=\d+ blocks=\d+", g.cmd(f"mem alloc {pages * PAGE}"))
    assert m, g.received[-1]
    g.vm.wait_until(lambda: g.cache()["async_reclaim"] > c0["async_reclaim"], ASYNC_TIMEOUT, "async reclaim")
    snap = after(g)  # the guest's line and the host's view, exactly, from mem show
    c = g.cache()
    cache_matches_mem(c, snap.mem)
    sent = dict(g.line(snap.seq).entries)
    want = {10: c["oom_kills"], 11: c["alloc_stalls"], 12: c["async_scan"] * PAGE, 13: c["direct_scan"] * PAGE,
            14: c["async_reclaim"] * PAGE, 15: c["direct_reclaim"] * PAGE}
    assert {t: sent[t] for t in want} == want, (sent, c)
    assert all(want.values()), f"a counter the workload should have moved is 0: {want}"
    names = ("stat-oom-kills", "stat-alloc-stalls", "stat-async-scans", "stat-direct-scans",
             "stat-async-reclaims", "stat-direct-reclaims")
    shown = {n: snap.stats.get(n) for n in names}
    if HOST.profile.stat_tags == 16:
        HOST.expect("tags 10-15 shown", shown, dict(zip(names, want.values())))
    else:
        HOST.expect("tags 10-15 shown", shown, dict.fromkeys(names))
    assert g.cmd(f"mem free {m.group(1)}").startswith("ok freed=")

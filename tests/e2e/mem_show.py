"""The console's `mem show` answer (docs/console.md), parsed in one place for the e2e
tests, the soak and the bench: every documented key must be there, so a test never
has to guess a default for a counter the guest forgot."""

from __future__ import annotations

import re
from typing import Dict

# The memory manager's part, then the balloon's (present when a balloon device is;
# without one the answer ends in `balloon=none`). Order as the guest prints them.
MM_KEYS = (
    "usable", "managed", "free", "allocated", "cached", "offline", "allocs", "frees",
    "alloc_failures", "huge_allocs", "huge_failures", "minor_faults", "heap_bytes", "heap_pages",
    "heap_reserved", "heap_in_use", "page_tables", "free_blocks", "direct_scan", "direct_reclaim",
    "async_scan", "async_reclaim", "alloc_stalls", "oom_kills",
)
BALLOON_KEYS = (
    "balloon_pages", "balloon_target", "balloon_inflating", "balloon_deflating",
    "balloon_inflated_total", "balloon_deflated_total", "deflate_on_oom", "oom_deflates", "oom_pages",
    "reporting", "reported_pages", "reporting_inflight", "page_poison", "balloon_failed",
)
MEM_SHOW_KEYS = MM_KEYS + BALLOON_KEYS
_NUMBERS = re.compile(r"ok(?: [a-z_]+=[0-9]+(?:,[0-9]+)*)+")


def parse_mem_show(answer: str, balloon: bool = True) -> Dict:
    """`mem show` to ints, free_blocks to a list of 10 (orders 0-9). With `balloon`,
    exactly the keys of MEM_SHOW_KEYS in that order; without, MM_KEYS then
    `balloon=none`."""
    body = answer[:-len(" balloon=none")] if not balloon and answer.endswith(" balloon=none") else answer
    assert _NUMBERS.fullmatch(body) and (balloon or body != answer), f"'mem show' answered {answer!r}"
    pairs = [tok.split("=", 1) for tok in body.split()[1:]]
    keys = tuple(k for k, _ in pairs)
    want = MEM_SHOW_KEYS if balloon else MM_KEYS
    assert keys == want, (f"'mem show' keys differ from docs/console.md: missing "
                          f"{[k for k in want if k not in keys]}, unknown {[k for k in keys if k not in want]}, "
                          f"or out of order: {answer!r}")
    m: Dict = {k: int(v) for k, v in pairs if k != "free_blocks"}
    m["free_blocks"] = [int(x) for x in dict(pairs)["free_blocks"].split(",")]
    assert len(m["free_blocks"]) == 10, f"free_blocks: one count per order 0-9: {answer!r}"
    return m

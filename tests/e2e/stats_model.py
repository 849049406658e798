"""What ballast should send in a stats buffer, from `mem show` alone: a model of the
guest's answer (docs/console.md's modes and personas, docs/personas.md), built byte
by byte and independent of the guest's code. A test compares the guest's logged
buffer with this model (the guest is right) and the host's guest-stats with the host
profile's reading of it (hosts.py: the host does what it is known to do)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Tuple

from hosts import ENTRY, UNSET, Sent

PAGE = 4096


def values(mem: Dict[str, int]) -> Dict[int, int]:
    """Tags 0-15 from the memory manager's counters (DESIGN: the memory manager is
    the source of truth). No backing store: swap and major faults are 0; available
    memory is free plus the reclaimable cache; scans and reclaims are in bytes."""
    return {
        0: 0, 1: 0, 2: 0, 3: mem["minor_faults"],
        4: mem["free"] * PAGE, 5: mem["managed"] * PAGE,
        6: (mem["free"] + mem["cached"]) * PAGE, 7: mem["cached"] * PAGE,
        8: mem["huge_allocs"], 9: mem["huge_failures"],
        10: mem["oom_kills"], 11: mem["alloc_stalls"],
        12: mem["async_scan"] * PAGE, 13: mem["direct_scan"] * PAGE,
        14: mem["async_reclaim"] * PAGE, 15: mem["direct_reclaim"] * PAGE,
    }


# Each persona's tag order and priming buffer (drivers/virtio/stats_plan.c's table,
# restated from docs/personas.md).
PERSONA_TAGS = {
    "ballast": tuple(range(16)),
    "linux-6.6": (0, 1, 2, 3, 8, 9, 4, 5, 6, 7),
    "linux-6.12": (0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 8, 9, 4, 5, 6, 7),
    "windows": (0, 1, 2, 3, 4, 5),
    "nanos": tuple(range(10)),
}
WINDOWS_SLOTS = 7
PRIMING = {"windows": (WINDOWS_SLOTS * ENTRY, 0xff), "nanos": (8, 0x00)}
TRAILING_FF = {"windows": WINDOWS_SLOTS - len(PERSONA_TAGS["windows"])}
UNKNOWN_FIRST, UNKNOWN_COUNT, UNKNOWN_EVERY = 16, 4, 3
TRUNCATE_BYTES, OVERLONG_PAD, EMPTY_BYTES = 3, 256, 2


@dataclass(frozen=True)
class Plan:
    """The answer mode, as the console's mode answer shows it."""
    persona: str = "ballast"
    fill: str = "entries"      # entries | empty | ff | zerolen
    unknown: bool = False
    duplicate: int = -1
    truncate: int = 0
    pad: int = 0
    reverse: bool = False
    overrides: Tuple[Tuple[int, int], ...] = ()

    @property
    def tags(self) -> Tuple[int, ...]:
        t = PERSONA_TAGS[self.persona]
        return tuple(reversed(t)) if self.reverse else t

    def but(self, **changes) -> "Plan":
        return replace(self, **changes)

    def override(self, tag: int, value: int) -> "Plan":
        return replace(self, overrides=tuple((t, v) for t, v in self.overrides if t != tag) + ((tag, value),))


def entry(tag: int, value: int) -> bytes:
    return tag.to_bytes(2, "little") + (value % 2**64).to_bytes(8, "little")


def build(plan: Plan, mem: Dict[str, int], first: bool = False) -> bytes:
    """The bytes of the buffer (first: the priming buffer at driver start)."""
    if first and plan.persona in PRIMING:
        n, byte = PRIMING[plan.persona]
        return bytes([byte]) * n
    if plan.fill == "zerolen":
        return b""
    if plan.fill == "empty":
        return bytes(EMPTY_BYTES)
    v = values(mem)
    v.update(dict(plan.overrides))
    out = b""
    unknown = 0
    for i, tag in enumerate(plan.tags):
        out += entry(tag, v.get(tag, 0))
        if plan.unknown and (i + 1) % UNKNOWN_EVERY == 0 and unknown < UNKNOWN_COUNT:
            out += entry(UNKNOWN_FIRST + unknown, 0)  # no spec tag: value 0
            unknown += 1
    if plan.duplicate >= 0:
        out += entry(plan.duplicate, v[plan.duplicate] + 1)
    out += bytes([0xff]) * (ENTRY * TRAILING_FF.get(plan.persona, 0))
    if plan.fill == "ff":
        out = bytes([0xff]) * len(out)
    out = out[:max(0, len(out) - plan.truncate)]
    return out + bytes(plan.pad)


def sent(plan: Plan, mem: Dict[str, int], first: bool = False) -> Sent:
    return Sent.from_bytes(build(plan, mem, first))


PLAIN = Plan()

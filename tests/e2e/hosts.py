"""The hosts ballast is tested on, as facts: one profile per QEMU generation.

The guest reports what it sent (`ballast: stats seq=N <name>=<value> ...`, every entry
of the buffer in order, plus `len=` when the buffer is not whole entries); what a host
makes of a buffer lives here, never in the guest. Tests that check host behaviour ask
the profile of the host they run on (`HOST`), so the same test passes on QEMU 7.2 and
10.0 and says which fact failed when a host changes.

The host is found by running the QEMU binary the suite uses (`BALLAST_QEMU`, set by
`make HOST=... / QEMU=...`) with --version. A version with no profile is an unknown
host: guest-correctness checks still assert, host-behaviour checks (`HOST.expect`)
are recorded against the nearest profile and reported instead of failing.

Facts from QEMU's source (hw/virtio/virtio-balloon.c, hw/virtio/virtio-pci.c,
hw/core/machine.c) and from runs here; ../shared/HOSTS.md has the longer story.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

UNSET = 2**64 - 1  # a stat the host has no value for, as QMP prints it

# Tags 0-15 as QEMU names them in guest-stats (virtio 1.3, 5.5.6.3; QEMU's
# balloon_stat_names). The guest's stats line uses these names, and tag<N> for others.
ALL_STAT_NAMES = (
    "stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
    "stat-free-memory", "stat-total-memory", "stat-available-memory", "stat-disk-caches",
    "stat-htlb-pgalloc", "stat-htlb-pgfail", "stat-oom-kills", "stat-alloc-stalls",
    "stat-async-scans", "stat-direct-scans", "stat-async-reclaims", "stat-direct-reclaims",
)
TAG_OF = {name: tag for tag, name in enumerate(ALL_STAT_NAMES)}
ENTRY = 10  # bytes of one (le16 tag, le64 value) entry


def tag_name(tag: int) -> str:
    return ALL_STAT_NAMES[tag] if tag < len(ALL_STAT_NAMES) else f"tag{tag}"


def name_tag(name: str) -> int:
    if name in TAG_OF:
        return TAG_OF[name]
    m = re.fullmatch(r"tag(\d+)", name)
    if not m:
        raise ValueError(f"not a stat name: {name!r}")
    return int(m.group(1))


@dataclass(frozen=True)
class Sent:
    """One stats buffer as the guest handed it over: its length in bytes and its whole
    entries, in order. Built from the guest's log line, or by a model of what the
    guest should send (stats_model.py); the two compare equal when the guest is right."""
    length: int
    entries: Tuple[Tuple[int, int], ...]  # (tag, value)

    @staticmethod
    def from_bytes(data: bytes) -> "Sent":
        whole = len(data) // ENTRY * ENTRY
        return Sent(len(data), tuple(
            (int.from_bytes(data[i:i + 2], "little"), int.from_bytes(data[i + 2:i + ENTRY], "little"))
            for i in range(0, whole, ENTRY)))


# "ballast: stats seq=N[ len=L] name=value ...": the whole line, from its start.
STATS_LINE = re.compile(r"^ballast: stats seq=(\d+)(?: len=(\d+))?((?: (?:stat-[a-z-]+|tag\d+)=\d+)*)$", re.M)
ANY_STATS_LINE = re.compile(r"^ballast: stats seq=", re.M)


def parse_stats_lines(text: str, strict: bool = True) -> Dict[int, Sent]:
    """Every stats line of `text` by seq. strict: a seq twice or a line that starts
    like one but does not parse fails (a log file may double a byte: not strict)."""
    out: Dict[int, Sent] = {}
    for m in STATS_LINE.finditer(text):
        seq = int(m.group(1))
        assert not (strict and seq in out), f"guest logged stats seq={seq} twice"
        try:
            entries = tuple((name_tag(k), int(v)) for k, v in (w.split("=") for w in m.group(3).split()))
        except ValueError:
            if strict:
                raise
            continue  # a doubled byte in a log file made a name no QEMU has
        length = int(m.group(2)) if m.group(2) is not None else ENTRY * len(entries)
        assert length // ENTRY == len(entries) or not strict, f"seq={seq}: len={length} but {len(entries)} entries"
        out[seq] = Sent(length, entries)
    if strict:
        bad = [l for l in text.splitlines() if l.startswith("ballast: stats seq=") and not STATS_LINE.fullmatch(l)]
        assert not bad, f"malformed stats lines: {bad[:3]}"
    return out


@dataclass(frozen=True)
class Profile:
    """What one QEMU generation does; every field is a fact a test relies on."""
    name: str
    version: Tuple[int, int]
    # guest-stats shows tags 0..stat_tags-1 (QEMU 9.2 added 10-15); others are dropped
    stat_tags: int
    # system_reset clears guest-stats to unset and last-update to 0 (since 10.0);
    # before, the values and last-update of the last buffer survive the reset
    reset_clears_stats: bool
    # MSI-X table entries of virtio-balloon-pci on this version's default machine
    # types ("vectors", new in 10.0, default 2); 0: no MSI-X capability, INTx only
    balloon_msix_vectors: int
    # virtio-balloon-pci accepts `vectors=`
    has_vectors_property: bool
    # device properties of virtio-balloon-pci beyond the ones every profile has
    extra_device_properties: Tuple[str, ...] = ()
    # facts every QEMU here shares, kept per profile so a host that changes one
    # shows up as a difference, not as a broken test
    zero_length_breaks_device: bool = True   # "zero sized buffers are not allowed": NEEDS_RESET
    second_buffer_returns_first: bool = True  # the held buffer comes back with length 0
    last_duplicate_wins: bool = True
    partial_entry_dropped: bool = True
    every_buffer_replaces_all: bool = True   # stats not in a buffer become unset
    polling_fires_at_once: bool = True       # enabling polling from 0 requests at once
    queue_sizes: Tuple[int, int, int] = (128, 128, 128)  # inflate, deflate, stats
    hint_queue_size: int = 1024
    reporting_queue_size: int = 32
    max_interval: int = 2**32 - 1
    # qom-set guest-stats-polling-interval errors, by the value set
    interval_errors: Tuple[Tuple[str, str], ...] = (
        ("-1", "timer value must be greater than zero"),
        ("4294967296", "timer value is too big"),
    )

    @property
    def stat_names(self) -> Tuple[str, ...]:
        return ALL_STAT_NAMES[:self.stat_tags]

    def unset(self) -> Dict[str, int]:
        return {n: UNSET for n in self.stat_names}

    def shows(self, sent: Sent, before: Optional[Dict[str, int]] = None) -> Dict[str, int]:
        """guest-stats' "stats" after the host parsed `sent` (`before`: what it showed
        until then, needed for a buffer the host refuses)."""
        if sent.length == 0 and self.zero_length_breaks_device:
            assert before is not None, "a zero-length buffer is never parsed: say what the host showed before"
            return dict(before)
        view = self.unset() if self.every_buffer_replaces_all else dict(before or self.unset())
        for tag, value in sent.entries:
            if tag < self.stat_tags:
                view[ALL_STAT_NAMES[tag]] = value
        return view

    def irq_mode(self, pci: bool, vectors: Optional[int] = None, queues: int = 3) -> str:
        """How ballast takes the balloon's interrupts here (what its up line says), for
        a device with `queues` queues (QEMU's: inflate, deflate, stats, and one each for
        free page hinting and reporting when on): a table with an entry for config and
        every queue gives each its own, two or more share one among the queues, one
        shares it with config."""
        if not pci:
            return "gsi"
        n = self.balloon_msix_vectors if vectors is None else vectors
        return ("intx" if n == 0 else "msix-shared" if n == 1 else "msix-vq" if n > queues else "msix")


PROFILES: Dict[str, Profile] = {
    "qemu-7.2": Profile("qemu-7.2", (7, 2), stat_tags=10, reset_clears_stats=False,
                        balloon_msix_vectors=0, has_vectors_property=False),
    # measured here (x-query-virtio-queue-status vring-num-default): every balloon
    # queue is 1024 entries on 10.0 (7.2: 128, reporting 32); a legacy transport
    # imposes it, a modern one lets the guest pick fewer
    "qemu-10.0": Profile("qemu-10.0", (10, 0), stat_tags=16, reset_clears_stats=True,
                         balloon_msix_vectors=2, has_vectors_property=True,
                         extra_device_properties=("in_order", "ioeventfd", "vectors"),
                         queue_sizes=(1024, 1024, 1024), reporting_queue_size=1024),
}


def qemu_binary() -> str:
    return os.environ.get("BALLAST_QEMU", "qemu-system-x86_64")


def qemu_version(binary: Optional[str] = None) -> Tuple[int, int, int]:
    out = subprocess.run([binary or qemu_binary(), "--version"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"QEMU emulator version (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read a version from {binary or qemu_binary()} --version: {out!r}")
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def nearest(version: Sequence[int]) -> Profile:
    """The profile of the newest generation not newer than `version` (the facts a
    host inherits), or the oldest one for anything older."""
    known = sorted(PROFILES.values(), key=lambda p: p.version)
    older = [p for p in known if p.version <= tuple(version[:2])]
    return older[-1] if older else known[0]


@dataclass
class Deviation:
    behaviour: str
    got: object
    want: object
    where: str


@dataclass
class Host:
    """The host under test: its version, its profile, and whether the profile is its
    own (known) or only the nearest one (an unknown host: report, do not fail)."""
    version: Tuple[int, int, int]
    profile: Profile
    known: bool
    deviations: List[Deviation] = field(default_factory=list)
    where: str = ""  # the running test, for the report

    @property
    def name(self) -> str:
        v = ".".join(map(str, self.version))
        return self.profile.name if self.known else f"qemu-{v} (unknown; nearest {self.profile.name})"

    @property
    def stat_names(self) -> Tuple[str, ...]:
        return self.profile.stat_names

    def shows(self, sent: Sent, before: Optional[Dict[str, int]] = None) -> Dict[str, int]:
        return self.profile.shows(sent, before)

    def expect(self, behaviour: str, got, want, detail: str = "") -> bool:
        """A host-behaviour check: asserts on a known host; on an unknown one records
        the difference for the report and returns False."""
        if got == want:
            return True
        if self.known:
            raise AssertionError(f"{self.profile.name}: {behaviour}: host {got!r}, profile says {want!r}"
                                 + (f" ({detail})" if detail else ""))
        self.deviations.append(Deviation(behaviour, got, want, self.where))
        return False


def detect(binary: Optional[str] = None) -> Host:
    version = qemu_version(binary)
    for p in PROFILES.values():
        if p.version == version[:2]:
            return Host(version, p, True)
    return Host(version, nearest(version), False)


HOST = detect()


def profile_table(rows: Iterable[str] = ()) -> str:
    """The README's table of what differs between the profiles, as markdown."""
    fields = ("stat_tags", "reset_clears_stats", "balloon_msix_vectors", "has_vectors_property",
              "extra_device_properties") + tuple(rows)
    ps = list(PROFILES.values())
    out = ["| fact | " + " | ".join(p.name for p in ps) + " |", "|---|" + "---|" * len(ps)]
    for f in fields:
        out.append(f"| {f} | " + " | ".join(str(getattr(p, f)) for p in ps) + " |")
    return "\n".join(out)

"""The balloon statistics as the host sees them (QOM over QMP) and as the guest sent
them (its `ballast: stats seq=...` log lines), and the exact pairing of the two.

QEMU 7.2 facts this relies on (hw/virtio/virtio-balloon.c):
- `guest-stats` is {"stats": {ten names: value}, "last-update": seconds}; a stat the
  guest never sent reads as 2**64 - 1, and last-update is the host's gettimeofday()
  seconds taken when the guest (re-)added its stats buffer, so it has 1 s resolution.
- Every time the guest adds the buffer QEMU parses it, sets last-update and re-arms
  its polling timer; the timer hands the buffer back to the guest (a request).
- Under TCG, virtio-pci has no ioeventfd (that needs KVM), so the guest's notify is
  handled before the notifying instruction completes: once the guest has added and
  kicked buffer n, the host holds the values of buffer n.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ballast_qemu import BallastVM

STAT_NAMES = (
    "stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
    "stat-free-memory", "stat-total-memory", "stat-available-memory",
    "stat-disk-caches", "stat-htlb-pgalloc", "stat-htlb-pgfail",
)
UNSET = 2**64 - 1  # the seed's "-1", as QMP prints it
INTERVAL = "guest-stats-polling-interval"
STATS = "guest-stats"
PERIPHERAL_PATH = "/machine/peripheral/balloon0"  # -device virtio-balloon-pci,id=balloon0

UPDATE_POLL = 0.05  # how often the host's last-update is read while waiting for a change
# last-update is the host's own clock, read on the same machine: it cannot be in our
# future, and it is at most this far in our past when we see the change.
CLOCK_SLACK = 3

# Not anchored at the line start on purpose: a stats line is written with interrupts
# off and is whole, but it may land inside a console answer that was being written
# (see test_stats_lines_not_spliced_into_console_answers); that is reported by its own
# test instead of making every value comparison fail.
STATS_LINE = re.compile(
    r"ballast: stats seq=(\d+)" + "".join(rf" {name}=(\d+)" for name in STAT_NAMES) + r"$", re.M)
ANY_STATS_LINE = re.compile(r"ballast: stats seq=")
# Console answers are pinned on their documented fields; later key=value words that
# the kernel may add are allowed (the kernel grows, e.g. `persona=` was added to show).
MORE_FIELDS = r"(?: [a-z_]+=\S+)*"
SHOW_RE = re.compile(r"ok seq=(\d+) requests=(\d+) paused=([01]) held=([01]) failed=([01])" + MORE_FIELDS)


def answer_match(answer: str, documented: str) -> re.Match:
    """The answer's documented fields, in order; later key=value words allowed."""
    m = re.fullmatch(documented + MORE_FIELDS, answer)
    assert m, f"console answered {answer!r}, want {documented!r} (plus optional key=value words)"
    return m


def guest_stats_lines(log: str) -> Dict[int, Dict[str, int]]:
    """Every stats line of the log by seq; malformed or repeated lines fail."""
    lines: Dict[int, Dict[str, int]] = {}
    for m in STATS_LINE.finditer(log):
        seq = int(m.group(1))
        assert seq not in lines, f"guest logged stats seq={seq} twice"
        lines[seq] = dict(zip(STAT_NAMES, (int(v) for v in m.groups()[1:])))
    starts = len(ANY_STATS_LINE.findall(log))
    assert starts == len(lines), (
        f"{starts - len(lines)} 'ballast: stats seq=' line(s) do not carry the ten stats in "
        f"QEMU's order: {[l for l in log.splitlines() if 'stats seq=' in l and not STATS_LINE.search(l)]}")
    return lines


@dataclass(frozen=True)
class Update:
    """One host-side stats update, paired with the guest line that produced it."""
    seq: int
    last_update: int
    stats: Dict[str, int]
    seen: float  # time.monotonic() when the change of last-update was seen


class Balloon:
    """The balloon device at one QOM path of one guest."""

    def __init__(self, vm: BallastVM, path: str = PERIPHERAL_PATH):
        self.vm = vm
        self.path = path

    # ---- host side --------------------------------------------------------------

    def stats(self) -> dict:
        return self.vm.qmp().cmd("qom-get", path=self.path, property=STATS)

    def interval(self) -> int:
        return self.vm.qmp().cmd("qom-get", path=self.path, property=INTERVAL)

    def set_interval(self, seconds) -> object:
        """qom-set; returns QMP's return value (raises on a QMP error)."""
        return self.vm.qmp().cmd("qom-set", path=self.path, property=INTERVAL, value=seconds)

    def qom_set_raw(self, prop: str, value) -> dict:
        """qom-set; returns the whole QMP response, error or not."""
        return self.vm.qmp().cmd_raw("qom-set", {"path": self.path, "property": prop, "value": value})

    # ---- guest side -------------------------------------------------------------

    def lines(self) -> Dict[int, Dict[str, int]]:
        return guest_stats_lines(self.vm.log_text())

    def show(self) -> Dict[str, int]:
        """`stats show`, parsed. The guest prints it with interrupts off, so it is one
        consistent snapshot of the driver's counters."""
        answer = self.vm.console("stats show")
        m = SHOW_RE.fullmatch(answer)
        assert m, f"'stats show' answered {answer!r}"
        return dict(zip(("seq", "requests", "paused", "held", "failed"), map(int, m.groups())))

    # ---- both -------------------------------------------------------------------

    def settled(self, attempts: int = 5) -> Tuple[int, dict]:
        """(n, guest-stats) such that the host's values are those of guest buffer n.

        The guest logs and adds each buffer with interrupts off, and `stats show` runs
        with interrupts off too, so when show says seq=n, buffer n has been added (and,
        under TCG, taken by the host). If show says n again after the qom-get, no
        buffer n+1 was added in between. A request arriving in between just retries."""
        for _ in range(attempts):
            before = self.show()
            host = self.stats()
            after = self.show()
            if before["seq"] == after["seq"]:
                return before["seq"], host
        raise AssertionError(f"guest seq kept moving across {attempts} qom-get attempts")

    def quiesce(self) -> None:
        """Wait until the wall clock has left the second of the last update, so the
        next update shows as a change of last-update (it has 1 s resolution)."""
        last = self.stats()["last-update"]
        self.vm.wait_until(lambda: int(time.time()) > last, 2.5, f"the second after last-update {last}")

    def wait_update(self, previous: int, timeout: float) -> Update:
        """Wait for last-update to change from `previous`; check it against the host's
        clock and the host's values against the guest's line for that buffer."""
        def changed() -> Optional[dict]:
            s = self.stats()
            return s if s["last-update"] != previous else None
        host = self.vm.wait_until(changed, timeout, f"a host stats update after last-update={previous}",
                                  interval=UPDATE_POLL)
        seen, now = time.monotonic(), time.time()
        lu = host["last-update"]
        assert now - CLOCK_SLACK <= lu <= now, (
            f"last-update {lu} is not within {CLOCK_SLACK}s before the host clock ({now:.2f})")
        seq, host = self.settled()
        self.assert_matches_guest(seq, host)
        return Update(seq, host["last-update"], host["stats"], seen)

    def assert_matches_guest(self, seq: int, host: dict) -> None:
        lines = self.lines()
        assert seq in lines, f"the guest reports seq={seq} but logged no stats line for it"
        assert set(host["stats"]) == set(STAT_NAMES), f"host stats keys: {sorted(host['stats'])}"
        unset = [k for k, v in host["stats"].items() if v == UNSET]
        assert not unset, f"stats the guest left unset: {unset}"
        assert host["stats"] == lines[seq], (
            f"host values differ from guest line seq={seq}: "
            f"{ {k: (host['stats'][k], lines[seq][k]) for k in STAT_NAMES if host['stats'][k] != lines[seq][k]} }")

    def assert_quiet(self, seconds: float, what: str) -> dict:
        """For `seconds`, the host's stats (last-update included) and the guest's stats
        lines must not change. This is the one place that watches a fixed time: it
        checks that something does not happen. Returns the frozen host stats."""
        frozen = self.stats()
        nlines = len(self.lines())
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < seconds:
            now = self.stats()
            assert now == frozen, f"{what}: host stats changed after {elapsed:.2f}s: {frozen} -> {now}"
            n = len(self.lines())
            assert n == nlines, f"{what}: guest logged {n - nlines} new stats line(s) after {elapsed:.2f}s"
            time.sleep(UPDATE_POLL)
        return frozen


def unset_stats() -> dict:
    """guest-stats of a device whose driver never sent a buffer."""
    return {"stats": {name: UNSET for name in STAT_NAMES}, "last-update": 0}

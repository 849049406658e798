"""The balloon statistics as the host sees them (QOM over QMP) and as the guest sent
them (its `ballast: stats seq=...` log lines), and the exact pairing of the two.

Facts this relies on, the same on every QEMU here (hw/virtio/virtio-balloon.c); what
differs between hosts is in hosts.py:
- `guest-stats` is {"stats": {name: value}, "last-update": seconds}; a stat the guest
  never sent reads as 2**64 - 1, and last-update is the host's gettimeofday() seconds
  taken when the guest (re-)added its stats buffer, so it has 1 s resolution.
- Every time the guest adds the buffer QEMU parses it, sets last-update and re-arms
  its polling timer; the timer hands the buffer back to the guest (a request).
- The guest's `stats show` says how many buffers it has handed over (seq). Under TCG
  the guest's notify is handled before the notifying instruction completes, so once
  the guest says seq=n, the host holds the values of buffer n.
- The guest's log line for buffer n is written after the buffer went to the host
  (the log never delays an answer), so a test waits for the line with that seq.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ballast_qemu import BallastVM
from hosts import ANY_STATS_LINE, HOST, STATS_LINE, UNSET, Sent, parse_stats_lines  # noqa: F401 (re-exported)

STAT_NAMES = HOST.stat_names  # the stats this host shows
INTERVAL = "guest-stats-polling-interval"
STATS = "guest-stats"
PERIPHERAL_PATH = "/machine/peripheral/balloon0"  # -device virtio-balloon-pci,id=balloon0

UPDATE_POLL = 0.05  # how often the host's last-update is read while waiting for a change
# last-update is the host's own clock, read on the same machine: it cannot be in our
# future, and it is at most this far in our past when we see the change.
CLOCK_SLACK = 3

# A line of the guest's log for a buffer is out this soon after the buffer went to the
# host (the log queue drains from the guest's idle loop).
LINE_TIMEOUT = 5.0
# Console answers are pinned on their documented fields; later key=value words that
# the kernel may add are allowed (the kernel grows, e.g. `persona=` was added to show).
MORE_FIELDS = r"(?: [a-z_]+=\S+)*"
SHOW_RE = re.compile(r"ok seq=(\d+) requests=(\d+) paused=([01]) held=([01]) failed=([01])" + MORE_FIELDS)


def answer_match(answer: str, documented: str) -> re.Match:
    """The answer's documented fields, in order; later key=value words allowed."""
    m = re.fullmatch(documented + MORE_FIELDS, answer)
    assert m, f"console answered {answer!r}, want {documented!r} (plus optional key=value words)"
    return m


# The one line a device gets in the default boot log.
UP_LINE = re.compile(r"^ballast: virtio-balloon (\S+): up ((?:[a-z_]+=\S+ ?)+)$", re.M)


def up_lines(log: str) -> Dict[str, Dict[str, str]]:
    """Each device's up line, by location ("00:01.0", "mmio@0xfeb00e00"), as key=value."""
    return {m.group(1): dict(w.split("=", 1) for w in m.group(2).split()) for m in UP_LINE.finditer(log)}


def up_line(vm: BallastVM, timeout: float = 5.0) -> Dict[str, str]:
    """The balloon's up line (there is one balloon)."""
    lines = vm.wait_until(lambda: up_lines(vm.log_text()), timeout, "the balloon's up line")
    assert len(lines) == 1, f"more than one balloon came up: {lines}"
    return next(iter(lines.values()))


def guest_stats_lines(log: str) -> Dict[int, Sent]:
    """Every stats line of the log by seq; malformed or repeated lines fail."""
    lines = parse_stats_lines(log)
    starts = len(ANY_STATS_LINE.findall(log))
    assert starts == len(lines), f"{starts - len(lines)} 'ballast: stats seq=' line(s) do not parse"
    return lines


def plain_tags(sent: Sent) -> bool:
    """ballast's plain buffer: tags 0-15, in order, whole."""
    return [t for t, _ in sent.entries] == list(range(16)) and sent.length == 160


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

    def lines(self) -> Dict[int, Sent]:
        return guest_stats_lines(self.vm.log_text())

    def line(self, seq: int, timeout: float = LINE_TIMEOUT) -> Sent:
        """The guest's line for buffer `seq`, once it is out."""
        return self.vm.wait_until(lambda: self.lines().get(seq), timeout, f"the guest's stats line seq={seq}")

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

        The guest adds and counts each buffer with interrupts off, and `stats show`
        reads the count with interrupts off too, so when show says seq=n, buffer n has
        been added (and, under TCG, taken by the host). If show says n again after the
        qom-get, no buffer n+1 was added in between. A request arriving in between just
        retries."""
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
        """Buffer `seq` was ballast's plain buffer (guest), and the host shows what its
        profile makes of it (host)."""
        sent = self.line(seq)
        assert plain_tags(sent), f"seq={seq} is not ballast's plain buffer of tags 0-15: {sent}"
        HOST.expect("guest-stats keys", sorted(host["stats"]), sorted(STAT_NAMES))
        want = HOST.shows(sent)
        HOST.expect(f"guest-stats after plain buffer seq={seq}", host["stats"], want,
                    f"differs in { {k: (host['stats'].get(k), want[k]) for k in want if host['stats'].get(k) != want[k]} }")

    def assert_quiet(self, seconds: float, what: str) -> dict:
        """For `seconds`, the host's stats (last-update included) must not change and the
        guest must hand over no buffer. This is the one place that watches a fixed time:
        it checks that something does not happen. Returns the frozen host stats."""
        frozen = self.stats()
        seq = self.show()["seq"]
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < seconds:
            now = self.stats()
            assert now == frozen, f"{what}: host stats changed after {elapsed:.2f}s: {frozen} -> {now}"
            n = self.show()["seq"]
            assert n == seq, f"{what}: guest handed over {n - seq} buffer(s) after {elapsed:.2f}s"
            time.sleep(UPDATE_POLL)
        return frozen


def unset_stats() -> dict:
    """guest-stats of a device whose driver never sent a buffer."""
    return {"stats": HOST.profile.unset(), "last-update": 0}

"""Exact pairing of the host's `guest-stats` with the guest's logged buffers, for
buffers that leave stats unset (fault injection, other guests' personas), and the
host's view of ballast's plain buffer computed from `mem show` alone.

Two checks per buffer, kept apart:
- the guest: the buffer it logged is the one the model says it should have sent
  (stats_model.py, from `mem show` and the answer mode);
- the host: guest-stats is what the host's profile makes of the logged buffer
  (hosts.py); on a host without a profile that is recorded, not asserted.

Stats lines are taken from the console socket: the log file can double a byte now and
then (QEMU's chardev logs a byte whose socket write would block, then logs it again
when the 16550 retries). The log file is used only for lines written before the
console client connected (the boot buffer), and only where they parse.
Every console command of a test must go through StatsGuest.cmd() so that no line
received on the socket is lost.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import stats_model
from ballast_qemu import BallastVM
from balloon_stats import LINE_TIMEOUT, MORE_FIELDS, STAT_NAMES, UNSET, Balloon  # noqa: F401 (re-exported)
from hosts import HOST, Sent, parse_stats_lines
from mem_show import parse_mem_show

PAGE = 4096
POLLING_1S = ("-device", "virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=1")
BOOT_TIMEOUT = 30
# An update at polling interval 1 s: due 1 s after the previous one, seen within this.
UPDATE_TIMEOUT = 4.0

SHOW_RE = re.compile(r"ok seq=(\d+) requests=(\d+) paused=([01]) held=([01]) failed=([01]) persona=(\S+)"
                     + MORE_FIELDS)
MODE_KEYS = ("persona", "paused", "delay_ms", "fill", "unknown", "duplicate", "truncate", "pad",
             "overrides", "tags")
MODE_RE = re.compile(r"ok persona=(\S+) paused=([01]) delay_ms=(\d+) fill=(entries|empty|ff|zerolen) "
                     r"unknown=([01]) duplicate=(-1|\d+) truncate=(\d+) pad=(\d+) overrides=(0x[0-9a-f]+) "
                     r"tags=(\d+)" + MORE_FIELDS)
# The mode answer of ballast's plain answers.
NORMAL_MODE = dict(persona="ballast", paused="0", delay_ms="0", fill="entries", unknown="0",
                   duplicate="-1", truncate="0", pad="0", overrides="0x0", tags="16")
CACHE_SHOW_RE = re.compile(r"ok cached=(\d+) low_watermark=(\d+) high_watermark=(\d+) direct_scan=(\d+) "
                           r"direct_reclaim=(\d+) async_scan=(\d+) async_reclaim=(\d+) alloc_stalls=(\d+) "
                           r"oom_kills=(\d+)" + MORE_FIELDS)
CACHE_KEYS = ("cached", "low_watermark", "high_watermark", "direct_scan", "direct_reclaim", "async_scan",
              "async_reclaim", "alloc_stalls", "oom_kills")


def ballast_view(mem: Dict[str, int]) -> Dict[str, int]:
    """What the host shows for ballast's plain buffer, from `mem show` alone."""
    return HOST.shows(stats_model.sent(stats_model.PLAIN, mem))


def all_unset() -> Dict[str, int]:
    return HOST.profile.unset()


def diff(got: Dict[str, int], want: Dict[str, int]) -> Dict[str, Tuple]:
    return {k: (got.get(k), want.get(k)) for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)}


@dataclass(frozen=True)
class Snapshot:
    """Host stats that are exactly those of guest buffer `seq`, and `mem show` taken
    while no other buffer was handed over."""
    seq: int
    last_update: int
    stats: Dict[str, int]
    mem: Dict[str, int]
    seen: float  # time.monotonic() of the qom-get


class StatsGuest:
    def __init__(self, vm: BallastVM):
        self.vm = vm
        self.bal = Balloon(vm)

    @property
    def received(self) -> List[str]:
        """Every line read from the console socket, in order."""
        return self.vm.received()

    # ---- console --------------------------------------------------------------------

    def cmd(self, line: str, timeout: float = 10.0) -> str:
        return self.vm.console(line, timeout)

    def ok(self, line: str) -> str:
        answer = self.cmd(line)
        assert answer.startswith("ok"), f"{line!r} answered {answer!r}"
        return answer

    def mode(self, line: str, **changed: str) -> Dict[str, str]:
        """A mode command; its answer must be exactly NORMAL_MODE with `changed`."""
        answer = self.cmd(line)
        m = MODE_RE.fullmatch(answer)
        assert m, f"{line!r} answered {answer!r}, not a mode answer"
        got = dict(zip(MODE_KEYS, m.groups()))
        want = {**NORMAL_MODE, **changed}
        assert got == want, f"{line!r}: mode fields {diff(got, want)} (got, want)"
        return got

    def show(self) -> Dict:
        answer = self.cmd("stats show")
        m = SHOW_RE.fullmatch(answer)
        assert m, f"'stats show' answered {answer!r}"
        d: Dict = dict(zip(("seq", "requests", "paused", "held", "failed"), map(int, m.groups()[:5])))
        d["persona"] = m.group(6)
        return d

    def mem(self) -> Dict[str, int]:
        return parse_mem_show(self.cmd("mem show"))

    def cache(self) -> Dict[str, int]:
        answer = self.cmd("cache show")
        m = CACHE_SHOW_RE.fullmatch(answer)
        assert m, f"'cache show' answered {answer!r}"
        return dict(zip(CACHE_KEYS, map(int, m.groups())))

    # ---- the guest's logged buffers ---------------------------------------------------

    def lines(self) -> Dict[int, Sent]:
        """Stats lines by seq: the socket's (exact), plus log-file lines for seqs the
        socket never carried (written before the client connected)."""
        sock = parse_stats_lines("\n".join(self.received))
        logged = parse_stats_lines(self.vm.log_text(), strict=False)
        return {**{s: v for s, v in logged.items() if s not in sock}, **sock}

    def line(self, seq: int, timeout: float = LINE_TIMEOUT) -> Sent:
        """The guest's logged buffer `seq`, once its line is out."""
        return self.vm.wait_until(lambda: self.lines().get(seq), timeout, f"the guest's stats line seq={seq}")

    # ---- host and guest together ------------------------------------------------------

    def host(self) -> dict:
        return self.bal.stats()

    def snapshot(self, after_seq: int = 0, attempts: int = 5) -> Snapshot:
        """Host stats paired with their guest buffer (seq > after_seq) and `mem show`,
        with no buffer handed over in between (seq unchanged around all of it)."""
        self.vm.wait_until(lambda: self.show()["seq"] > after_seq, UPDATE_TIMEOUT,
                           f"a stats buffer after seq={after_seq}", interval=0.05)
        for _ in range(attempts):
            before = self.show()
            host = self.host()
            seen = time.monotonic()
            mem = self.mem()
            after = self.show()
            if before["seq"] == after["seq"]:
                return Snapshot(before["seq"], host["last-update"], host["stats"], mem, seen)
        raise AssertionError(f"guest seq kept moving across {attempts} snapshot attempts")

    def assert_exact(self, snap: Snapshot, want: Optional[Dict[str, int]] = None,
                     sent: Optional[Sent] = None, before: Optional[Dict[str, int]] = None) -> None:
        """The host shows exactly what its profile makes of the guest's logged buffer
        (and, if given, exactly `want`); if given, the guest logged exactly `sent`."""
        line = self.line(snap.seq)
        if sent is not None:
            assert line == sent, f"guest buffer seq={snap.seq}: logged {line}, the model says {sent}"
        HOST.expect("guest-stats keys", sorted(snap.stats), sorted(STAT_NAMES))
        view = HOST.shows(line, before)
        HOST.expect(f"guest-stats after buffer seq={snap.seq}", snap.stats, view, str(diff(snap.stats, view)))
        if want is not None:
            HOST.expect(f"guest-stats after buffer seq={snap.seq}, from mem show", snap.stats, want,
                        str(diff(snap.stats, want)))

    def assert_sent(self, snap: Snapshot, plan: stats_model.Plan, first: bool = False) -> None:
        """The guest sent what `plan` says for the counters of `snap.mem`, and the host
        shows what its profile makes of that."""
        model = stats_model.sent(plan, snap.mem, first)
        self.assert_exact(snap, HOST.shows(model), model)

    def next_update(self, after_seq: int, after_lu: int, timeout: float = UPDATE_TIMEOUT) -> Snapshot:
        """The first snapshot of a buffer after seq `after_seq` whose last-update is
        later than `after_lu`: the host parsed a new buffer and moved its clock."""
        self.vm.wait_until(lambda: self.host()["last-update"] > after_lu, timeout,
                           f"last-update after {after_lu}", interval=0.05)
        snap = self.snapshot(after_seq)
        assert snap.last_update > after_lu
        return snap

    def updates_normal(self, after: Snapshot, count: int = 1) -> List[Snapshot]:
        """`count` further updates, each exactly ballast's plain buffer (nothing unset,
        values as `mem show` says)."""
        got = []
        for _ in range(count):
            after = self.next_update(after.seq, after.last_update)
            self.assert_sent(after, stats_model.PLAIN)
            got.append(after)
        return got

    def quiet(self, seconds: float, what: str) -> dict:
        """For `seconds`, the host's stats (last-update included) do not change.
        The one fixed window: it checks that something does not happen."""
        frozen = self.host()
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < seconds:
            now = self.host()
            assert now == frozen, f"{what}: host stats changed after {elapsed:.2f}s: {diff(now, frozen)}"
            time.sleep(0.05)
        return frozen

    def wait_show(self, pred: Callable[[Dict], bool], timeout: float, what: str) -> Dict:
        def check() -> Optional[Dict]:
            s = self.show()
            return s if pred(s) else None
        return self.vm.wait_until(check, timeout, what, interval=0.02)

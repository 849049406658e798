"""Stats fault injection and guest personas against QEMU 7.2, exactly.

For every mode of `stats ...` and every persona: what `qom-get guest-stats` shows
(checked twice: equal to the guest's logged line for the buffer the host holds, and
equal to a model computed from `mem show` alone), whether `last-update` moves, and
that `stats normal` / `persona ballast` bring back exact plain updates.

QEMU 7.2 reactions measured here (hw/virtio/virtio-balloon.c, hw/virtio/virtio.c):
- A buffer with no whole 10-byte entry (`stats empty`: 2 bytes; nanos' 8-byte priming
  buffer) or of all 0xff (`stats ff`, windows' priming buffer): every stat unset, and
  last-update moves all the same.
- Tags >= 10 (`stats unknown` 16-19, linux-6.12's 10-15, windows' 0xffff slot) are
  dropped; a partial last entry is dropped; zero padding parses as tag-0 entries of
  value 0 (it overwrites swap-in); a later duplicate wins; order does not matter.
- A zero-length buffer: "virtio: zero sized buffers are not allowed" on QEMU's stderr,
  the device is marked broken (status NEEDS_RESET) and the buffer is never parsed: the
  host keeps the previous buffer's values and last-update for good, and never sends a
  request again. (The guest's log line for that buffer says all-unset, which is what
  its parser model makes of 0 bytes, not what the host shows.)
- A delayed answer (`stats delay`) is parsed whenever it comes; the next request comes
  one interval after it, so updates are (delay + interval) apart.
- A second buffer while the host holds one (`stats extra`): QEMU hands the held one
  back with length 0 and keeps the new one; polling goes on.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import pytest

from balloon_stats import STAT_NAMES, UNSET, unset_stats
from stats_exact import (BOOT_TIMEOUT, POLLING_1S, StatsGuest, all_unset, ballast_view,
                         diff, unset_except)

EARLY = 0.3  # an update may be seen this much before its nominal time ...
LATE = 1.5   # ... and this much after it (TCG on a loaded box)
QEMU_ZERO_LEN = "qemu-system-x86_64: virtio: zero sized buffers are not allowed"
EXTRA_BACK = re.compile(r"^ballast: virtio-balloon \S+: stats: the host handed back the extra buffer$", re.M)
FIRST_SIX = STAT_NAMES[:6]  # tags 0-5: what windows' kernel-side stats send


def mark(g: StatsGuest) -> Tuple[int, int]:
    """(guest seq, host last-update) right now: every buffer after this seq was built
    in the mode set before the call."""
    return g.show()["seq"], g.host()["last-update"]


PERSONA_TAGS = {"ballast": "16", "linux-6.6": "10", "linux-6.12": "16", "windows": "6", "nanos": "10"}


def back_to_normal(g: StatsGuest, count: int = 1) -> None:
    """`stats normal` (keeps the persona), `persona ballast`: the plain mode, then
    `count` plain updates, exactly."""
    persona = g.show()["persona"]
    g.mode("stats normal", persona=persona, tags=PERSONA_TAGS[persona])
    g.mode("persona ballast")
    seq, lu = mark(g)
    snap = g.next_update(seq, lu)
    g.assert_exact(snap, ballast_view(snap.mem))
    g.updates_normal(snap, count - 1)


# ---- one guest, polled every second, for the modes that leave the device working ----


@pytest.fixture(scope="class")
def polled(shared_ballast_vm):
    vm = shared_ballast_vm(boot="pvh", devices=POLLING_1S)
    vm.wait_ready(BOOT_TIMEOUT)
    return StatsGuest(vm)


@pytest.fixture
def g(polled):
    """The shared guest in plain mode, answering; put back there afterwards."""
    show = polled.show()
    assert (show["paused"], show["held"], show["failed"], show["persona"]) == (0, 0, 0, "ballast"), show
    yield polled
    if polled.vm.proc.poll() is None:
        polled.cmd("stats resume")
        polled.cmd("stats normal")
        polled.cmd("persona ballast")


@dataclass(frozen=True)
class Mode:
    commands: Tuple[Tuple[str, Dict[str, str]], ...]  # each command and its mode answer's changes
    want: Callable[[Dict[str, int]], Dict[str, int]]   # host view from `mem show`


def with_(**changes) -> Callable[[Dict[str, int]], Dict[str, int]]:
    def want(mem):
        v = ballast_view(mem)
        for k, f in changes.items():
            v[f"stat-{k.replace('_', '-')}"] = f(v) if callable(f) else f
        return v
    return want


L66 = ("persona linux-6.6", dict(persona="linux-6.6", tags="10"))
MODES = {
    "empty": Mode((("stats empty", dict(fill="empty")),), lambda mem: all_unset()),
    "ff": Mode((("stats ff", dict(fill="ff")),), lambda mem: all_unset()),
    "unknown": Mode((("stats unknown", dict(unknown="1")),), ballast_view),
    "duplicate-free": Mode((("stats duplicate free-memory", dict(duplicate="4")),),
                           with_(free_memory=lambda v: v["stat-free-memory"] + 1)),
    # ballast's last entry is tag 15, which QEMU 7.2 ignores anyway: nothing visible
    "truncate": Mode((("stats truncate", dict(truncate="3")),), ballast_view),
    # linux-6.6's last entry is tag 7: the disk caches go unset
    "truncate-linux-6.6": Mode((L66, ("stats truncate", dict(L66[1], truncate="3"))),
                               with_(disk_caches=UNSET)),
    # reversed, linux-6.6 ends with tag 0: swap-in goes unset instead
    "reverse-truncate-linux-6.6": Mode(
        (L66, ("stats order reverse", L66[1]), ("stats truncate", dict(L66[1], truncate="3"))),
        with_(swap_in=UNSET)),
    "overlong": Mode((("stats overlong", dict(pad="256")),), ballast_view),
    # the override shows ...
    "set-swap-in": Mode((("stats set swap-in 7", dict(overrides="0x1")),), with_(swap_in=7)),
    # ... until the zero padding, parsed as tag-0 entries of value 0, overwrites it
    "set-swap-in-overlong": Mode((("stats set swap-in 7", dict(overrides="0x1")),
                                  ("stats overlong", dict(overrides="0x1", pad="256"))), with_(swap_in=0)),
    "set-total-0": Mode((("stats set total-memory 0", dict(overrides="0x20")),), with_(total_memory=0)),
    "set-total-max": Mode((("stats set stat-total-memory 18446744073709551615", dict(overrides="0x20")),),
                          with_(total_memory=2**64 - 1)),
    "order-reverse": Mode((("stats order reverse", {}),), ballast_view),
    # reversed, the duplicate still comes last and wins
    "reverse-duplicate": Mode((("stats order reverse", {}), ("stats duplicate 7", dict(duplicate="7"))),
                              with_(disk_caches=lambda v: v["stat-disk-caches"] + 1)),
}


class TestPolledGuest:
    @pytest.mark.parametrize("name", list(MODES))
    def test_mode(self, g, name):
        mode = MODES[name]
        for cmd, changes in mode.commands:
            g.mode(cmd, **changes)
        seq, lu = mark(g)
        # The host parses the next buffer (last-update moves, stats unset or not)
        # and shows exactly what the guest logged and the model says.
        snap = g.next_update(seq, lu)
        g.assert_exact(snap, mode.want(snap.mem))
        back_to_normal(g)

    def test_delay(self, g):
        g.mode("stats delay 1500", delay_ms="1500")
        # Each request is answered 1.5 s late: the guest holds it that long.
        req = g.wait_show(lambda s: s["held"] == 1, 1 + LATE + 1.5, "a request held for the delay")
        t_req = time.monotonic()
        ans = g.wait_show(lambda s: s["held"] == 0, 1.5 + LATE, "the delayed answer")
        held_for = time.monotonic() - t_req
        assert 1.5 - 0.15 <= held_for <= 1.5 + LATE, f"a request was held {held_for:.2f}s with delay 1500 ms"
        assert (ans["seq"], ans["requests"]) == (req["seq"] + 1, req["requests"])
        # Updates still come, exact, one a (delay + interval) apart.
        u1 = g.next_update(*mark(g), timeout=2.5 + LATE + 1)
        u2 = g.next_update(u1.seq, u1.last_update, timeout=2.5 + LATE + 1)
        assert u2.seq == u1.seq + 1
        assert 2.5 - EARLY <= u2.seen - u1.seen <= 2.5 + LATE, (
            f"updates {u2.seen - u1.seen:.2f}s apart with delay 1.5 s at interval 1 s")
        for u in (u1, u2):
            g.assert_exact(u, ballast_view(u.mem))
        # Back to plain answers: one a second again.
        g.mode("stats normal")
        seq, lu = mark(g)
        first = g.next_update(seq, lu, timeout=1.5 + 1 + LATE)  # a delayed answer may be in flight
        more = g.updates_normal(first, 2)
        assert more[1].seen - more[0].seen <= 1 + LATE

    def test_extra_buffer(self, g):
        before = g.snapshot()
        extras_before = sum(l.startswith("ok extra=1 ") for l in g.received)
        m = re.fullmatch(r"ok extra=1 seq=(\d+)", g.ok("stats extra"))
        assert m, g.received[-1]

        # QEMU hands the held (main) buffer back at once and keeps the extra one; the
        # guest answers the main one, and QEMU hands back the extra one, which the
        # guest retires. So the guest logs: extra (n), main (n + 1), handed back.
        def handed_back(n: int) -> bool:
            g.cmd("help")
            return len(EXTRA_BACK.findall("\n".join(g.received))) == n
        g.vm.wait_until(lambda: handed_back(1), 2, "the extra buffer handed back")
        text = "\n".join(g.received)
        seqs = [int(x) for x in re.findall(r"^ballast: stats seq=(\d+) ", text[:EXTRA_BACK.search(text).start()], re.M)]
        main = seqs[-1]
        assert seqs[-2:] == [main - 1, main] and main - 1 > before.seq, seqs[-3:]
        # The answer's seq is the extra buffer's: read before interrupts are back on
        # (balloon_console.c), so the main buffer's answer cannot slip in between.
        assert int(m.group(1)) == main - 1, (m.group(0), seqs[-3:])
        # Every request answered once, plus the boot buffer, plus the extra buffers.
        show = g.show()
        assert (show["held"], show["failed"]) == (0, 0)
        assert show["seq"] == show["requests"] + 1 + extras_before + 1, show
        # The host holds the main buffer again, exact, and polling goes on.
        snap = g.snapshot(main - 1)
        g.assert_exact(snap, ballast_view(snap.mem))
        g.updates_normal(snap, 2)
        # One shot: it can be sent again once retired.
        assert re.fullmatch(r"ok extra=1 seq=\d+", g.ok("stats extra"))
        g.vm.wait_until(lambda: handed_back(2), 2, "the second extra buffer handed back")

    @pytest.mark.parametrize("persona,tags,keep", [
        pytest.param("linux-6.6", "10", STAT_NAMES, id="linux-6.6"),
        pytest.param("linux-6.12", "16", STAT_NAMES, id="linux-6.12"),  # tags 10-15 dropped
        pytest.param("windows", "6", FIRST_SIX, id="windows"),  # tags 0-5 and a 0xffff slot
        pytest.param("nanos", "10", STAT_NAMES, id="nanos"),
        pytest.param("ballast", "16", STAT_NAMES, id="ballast"),
    ])
    def test_persona(self, g, persona, tags, keep):
        g.mode(f"persona {persona}", persona=persona, tags=tags)
        assert g.show()["persona"] == persona
        seq, lu = mark(g)
        u1 = g.next_update(seq, lu)
        u2 = g.next_update(u1.seq, u1.last_update)
        for u in (u1, u2):
            g.assert_exact(u, unset_except(ballast_view(u.mem), keep))
        # Fault settings set before a persona switch are cleared by it.
        g.mode("stats ff", persona=persona, tags=tags, fill="ff")
        g.mode(f"persona {persona}", persona=persona, tags=tags)
        back_to_normal(g)

    def test_duplicate_and_set_by_number_and_name(self, g):
        # Tag numbers and QMP names with or without `stat-` are the same tag.
        g.mode("stats duplicate 4", duplicate="4")
        g.mode("stats duplicate stat-free-memory", duplicate="4")
        g.mode("stats set 5 0", duplicate="4", overrides="0x20")
        seq, lu = mark(g)
        snap = g.next_update(seq, lu)
        g.assert_exact(snap, with_(free_memory=lambda v: v["stat-free-memory"] + 1, total_memory=0)(snap.mem))
        back_to_normal(g)


class StuckAfterNormal(AssertionError):
    """`stats normal` after `stats pause` leaves the held buffer held (kernel bug)."""


class TestPausedGuest:
    def test_normal_after_pause(self, g):
        assert g.ok("stats pause") == "ok paused=1"
        held = g.wait_show(lambda s: s["held"] == 1, 1 + LATE + 1, "the guest to hold a request")
        frozen = g.quiet(2.2, "guest holding the buffer")
        assert g.show() == held
        g.mode("stats normal")  # documented: "no delay, not paused"
        try:
            g.next_update(held["seq"], frozen["last-update"], timeout=1 + LATE + 1)
        except AssertionError as e:
            show = g.show()
            raise StuckAfterNormal(f"no update after `stats normal` from pause; guest: {show}") from e


# ---- a zero-length buffer breaks the device for good ---------------------------------


def test_zerolen(ballast_vm):
    vm = ballast_vm(boot="pvh", devices=POLLING_1S)
    vm.wait_ready(BOOT_TIMEOUT)
    g = StatsGuest(vm)
    seq, lu = mark(g)
    last_good = g.next_update(seq, lu)
    g.assert_exact(last_good, ballast_view(last_good.mem))
    g.mode("stats zerolen", fill="zerolen")
    before, _ = mark(g)  # buffers after this one are zero-length
    sent = g.wait_show(lambda s: s["seq"] > before, 1 + LATE + 1, "the zero-length answer")
    vm.wait_until(lambda: QEMU_ZERO_LEN in vm.stderr_log.read_text(), 2, "QEMU's complaint on stderr")
    status = vm.qmp().cmd("x-query-virtio-status", path="/machine/peripheral/balloon0/virtio-backend")
    assert status["broken"] is True
    assert any(s.startswith("VIRTIO_CONFIG_S_NEEDS_RESET") for s in status["status"]["statuses"]), status
    # The guest logs the buffer as zero-length (there is nothing for QEMU to parse):
    # the host keeps the values and last-update of the buffer before.
    zero_seq = before + 1
    g.cmd("help")  # collect the lines that arrived
    assert zero_seq in g.zero_length_seqs()
    frozen = g.quiet(3.2, "device broken by a zero-length buffer")
    assert frozen["last-update"] >= last_good.last_update
    assert frozen["stats"] == g.line(zero_seq - 1), diff(frozen["stats"], g.line(zero_seq - 1))
    assert g.show()["requests"] == sent["requests"], "a request reached the guest after the zero-length buffer"
    # QEMU set NEEDS_RESET and signalled a config change: the guest marks the device
    # FAILED and says so; `stats normal` changes nothing on the host.
    vm.wait_for_log(r"ballast: virtio-balloon .*: FAILED: device set DEVICE_NEEDS_RESET", 5)
    g.mode("stats normal")
    assert g.quiet(2.2, "after stats normal") == frozen
    show = g.show()
    assert (show["seq"], show["requests"], show["failed"]) == (sent["seq"], sent["requests"], 1)
    assert g.mem()["balloon_failed"] == 1
    # The guest itself is alive: console and memory manager answer.
    assert g.cmd("help") == "ok commands=stats,persona,mem,cache,uptime,help"
    mem = g.mem()
    assert mem["managed"] == mem["free"] + mem["allocated"]
    assert re.fullmatch(r"ok id=\d+ bytes=1048576 blocks=\d+", g.cmd("mem alloc 1M"))
    assert vm.proc.poll() is None
    assert vm.stderr_log.read_text().count(QEMU_ZERO_LEN) == 1


# ---- boot-time settings --------------------------------------------------------------


@pytest.mark.parametrize("persona,priming_keep,keep", [
    pytest.param("nanos", (), STAT_NAMES, id="nanos"),  # 8 bytes: no whole entry
    pytest.param("windows", (), FIRST_SIX, id="windows"),  # 70 bytes of 0xff
    pytest.param("linux-6.6", STAT_NAMES, STAT_NAMES, id="linux-6.6"),  # full buffer of current stats
])
def test_boot_persona(ballast_vm, persona, priming_keep, keep):
    vm = ballast_vm(boot="pvh", cmdline=f"persona={persona}", devices=POLLING_1S, extra_args=("-S",))
    g = StatsGuest(vm)
    assert g.host() == unset_stats()
    assert vm.qmp().cmd("cont") == {}
    # The priming buffer: read within 20 ms of QEMU parsing it, a second before the
    # first request (QEMU re-arms its 1 s timer when it parses a buffer).
    priming = vm.wait_until(lambda: (h := g.host())["last-update"] and h, BOOT_TIMEOUT,
                            "the priming buffer", interval=0.02)
    vm.wait_ready(BOOT_TIMEOUT)
    log = vm.log_text()
    assert 0 <= log.find("ballast: stats seq=1 ") < log.find("ballast: ready")
    assert g.line(1) == priming["stats"], f"priming buffer: host vs guest line 1: {diff(priming['stats'], g.line(1))}"
    show = g.show()
    assert show["persona"] == persona
    if priming_keep:
        assert UNSET not in priming["stats"].values()
    else:
        assert priming["stats"] == all_unset()
    # Later buffers: the persona's tag set, exactly.
    u = g.next_update(1, priming["last-update"])
    g.assert_exact(u, unset_except(ballast_view(u.mem), keep))
    back_to_normal(g)


def test_boot_fault_and_delay(ballast_vm):
    vm = ballast_vm(boot="pvh", cmdline="stats_fault=unknown stats_delay=500", devices=POLLING_1S)
    vm.wait_ready(BOOT_TIMEOUT)
    g = StatsGuest(vm)
    show = g.show()
    assert (show["persona"], show["paused"], show["failed"]) == ("ballast", 0, 0)
    # A mode command shows the boot settings (reversing twice changes nothing).
    for _ in range(2):
        g.mode("stats order reverse", unknown="1", delay_ms="500")
    # Requests are answered half a second late.
    g.wait_show(lambda s: s["held"] == 1, 1 + LATE + 1, "a request held for the delay")
    t_req = time.monotonic()
    g.wait_show(lambda s: s["held"] == 0, 0.5 + LATE, "the delayed answer")
    held_for = time.monotonic() - t_req
    assert 0.5 - 0.15 <= held_for <= 0.5 + LATE, f"a request was held {held_for:.2f}s with stats_delay=500"
    # Tags 16-19 mixed in: the known ten arrive exactly.
    u = g.next_update(*mark(g), timeout=1.5 + LATE + 1)
    g.assert_exact(u, ballast_view(u.mem))
    g.mode("stats normal")
    seq, lu = mark(g)
    g.updates_normal(g.next_update(seq, lu), 1)

"""Stats fault injection and guest personas, exactly, on every host.

For every mode of `stats ...` and every persona: the buffer the guest logged is the
one the model says it should send (stats_model.py, from `mem show`), `qom-get
guest-stats` shows what the host's profile makes of that buffer (hosts.py), whether
`last-update` moves, and that `stats normal` / `persona ballast` bring back exact
plain updates.

What QEMU does with such buffers (7.2 and 10.0 alike, hw/virtio/virtio-balloon.c and
hw/virtio/virtio.c; the profile's facts):
- A buffer with no whole 10-byte entry (`stats empty`: 2 bytes; nanos' 8-byte priming
  buffer) or of all 0xff (`stats ff`, windows' priming buffer): every stat unset, and
  last-update moves all the same.
- Tags the host does not know (16-19 of `stats unknown`, windows' 0xffff slot; 10-15
  on 7.2) are dropped; a partial last entry is dropped; zero padding parses as tag-0
  entries of value 0 (it overwrites swap-in); a later duplicate wins; order does not
  matter.
- A zero-length buffer: "virtio: zero sized buffers are not allowed" on QEMU's stderr,
  the device is marked broken (status NEEDS_RESET) and the buffer is never parsed: the
  host keeps the previous buffer's values and last-update for good, and never sends a
  request again.
- A delayed answer (`stats delay`) is parsed whenever it comes; the next request comes
  one interval after it, so updates are (delay + interval) apart.
- A second buffer while the host holds one (`stats extra`): QEMU hands the held one
  back with length 0 and keeps the new one; polling goes on.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Tuple

import pytest

import stats_model
from balloon_stats import unset_stats
from hosts import HOST
from stats_exact import BOOT_TIMEOUT, POLLING_1S, StatsGuest
from stats_model import PLAIN, Plan

EARLY = 0.3  # an update may be seen this much before its nominal time ...
LATE = 1.5   # ... and this much after it (TCG on a loaded box)
QEMU_ZERO_LEN = "qemu-system-x86_64: virtio: zero sized buffers are not allowed"
EXTRA_BACK = re.compile(r"^ballast: virtio-balloon \S+: stats: the host handed back the extra buffer$", re.M)


def mark(g: StatsGuest) -> Tuple[int, int]:
    """(guest seq, host last-update) right now: every buffer after this seq was built
    in the mode set before the call."""
    return g.show()["seq"], g.host()["last-update"]


PERSONA_TAGS = {p: str(len(t)) for p, t in stats_model.PERSONA_TAGS.items()}


def back_to_normal(g: StatsGuest, count: int = 1) -> None:
    """`stats normal` (keeps the persona), `persona ballast`: the plain mode, then
    `count` plain updates, exactly."""
    persona = g.show()["persona"]
    g.mode("stats normal", persona=persona, tags=PERSONA_TAGS[persona])
    g.mode("persona ballast")
    seq, lu = mark(g)
    snap = g.next_update(seq, lu)
    g.assert_sent(snap, PLAIN)
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
    commands: Tuple[Tuple[str, dict], ...]  # each command and its mode answer's changes
    plan: Plan                              # what the guest should send then


L66 = ("persona linux-6.6", dict(persona="linux-6.6", tags="10"))
LINUX66 = PLAIN.but(persona="linux-6.6")
MODES = {
    "empty": Mode((("stats empty", dict(fill="empty")),), PLAIN.but(fill="empty")),
    "ff": Mode((("stats ff", dict(fill="ff")),), PLAIN.but(fill="ff")),
    "unknown": Mode((("stats unknown", dict(unknown="1")),), PLAIN.but(unknown=True)),
    "duplicate-free": Mode((("stats duplicate free-memory", dict(duplicate="4")),), PLAIN.but(duplicate=4)),
    # ballast's last entry is tag 15 (7.2 drops it anyway; 10.0 shows it unset)
    "truncate": Mode((("stats truncate", dict(truncate="3")),), PLAIN.but(truncate=3)),
    # linux-6.6's last entry is tag 7: the disk caches go unset
    "truncate-linux-6.6": Mode((L66, ("stats truncate", dict(L66[1], truncate="3"))), LINUX66.but(truncate=3)),
    # reversed, linux-6.6 ends with tag 0: swap-in goes unset instead
    "reverse-truncate-linux-6.6": Mode(
        (L66, ("stats order reverse", L66[1]), ("stats truncate", dict(L66[1], truncate="3"))),
        LINUX66.but(reverse=True, truncate=3)),
    "overlong": Mode((("stats overlong", dict(pad="256")),), PLAIN.but(pad=256)),
    # the override shows ...
    "set-swap-in": Mode((("stats set swap-in 7", dict(overrides="0x1")),), PLAIN.override(0, 7)),
    # ... until the zero padding, parsed as tag-0 entries of value 0, overwrites it
    "set-swap-in-overlong": Mode((("stats set swap-in 7", dict(overrides="0x1")),
                                  ("stats overlong", dict(overrides="0x1", pad="256"))),
                                 PLAIN.override(0, 7).but(pad=256)),
    "set-total-0": Mode((("stats set total-memory 0", dict(overrides="0x20")),), PLAIN.override(5, 0)),
    "set-total-max": Mode((("stats set stat-total-memory 18446744073709551615", dict(overrides="0x20")),),
                          PLAIN.override(5, 2**64 - 1)),
    # tags 10-15 by name (what QEMU 9.2 and later show)
    "set-oom-kills": Mode((("stats set oom-kills 12345", dict(overrides="0x400")),), PLAIN.override(10, 12345)),
    "order-reverse": Mode((("stats order reverse", {}),), PLAIN.but(reverse=True)),
    # reversed, the duplicate still comes last and wins
    "reverse-duplicate": Mode((("stats order reverse", {}), ("stats duplicate 7", dict(duplicate="7"))),
                              PLAIN.but(reverse=True, duplicate=7)),
}


class TestPolledGuest:
    @pytest.mark.parametrize("name", list(MODES))
    def test_mode(self, g, name):
        mode = MODES[name]
        for cmd, changes in mode.commands:
            g.mode(cmd, **changes)
        seq, lu = mark(g)
        # The host parses the next buffer (last-update moves, stats unset or not):
        # the guest sent what the model says, the host shows what its profile
        # makes of it.
        snap = g.next_update(seq, lu)
        g.assert_sent(snap, mode.plan)
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
            g.assert_sent(u, PLAIN)
        # Back to plain answers: one a second again.
        g.mode("stats normal")
        seq, lu = mark(g)
        first = g.next_update(seq, lu, timeout=1.5 + 1 + LATE)  # a delayed answer may be in flight
        more = g.updates_normal(first, 2)
        assert more[1].seen - more[0].seen <= 1 + LATE

    def test_delay_runs_from_resume(self, g):
        # pause, a request held, a delay set while paused, resume: the delay runs
        # from the resume (docs/console.md), however long the buffer was held before
        assert g.ok("stats pause") == "ok paused=1"
        held = g.wait_show(lambda s: s["held"] == 1, 1 + LATE + 1, "a request held while paused")
        t_held = time.monotonic()
        g.mode("stats delay 1000", delay_ms="1000", paused="1")
        # held past the delay while paused (the old bug answered at the next tick after
        # resume, the delay counted from the request): it stays held all that while
        still = g.wait_show(lambda s: s["held"] != 1 or time.monotonic() - t_held >= 1.5, 1.5 + LATE,
                            "the buffer held past the delay while paused")
        assert (still["held"], still["seq"], still["paused"]) == (1, held["seq"], 1), still
        t_resume = time.monotonic()
        assert g.ok("stats resume") == "ok paused=0 answered_held=0"
        ans = g.wait_show(lambda s: s["held"] == 0, 1 + LATE, "the delayed answer after resume")
        waited = time.monotonic() - t_resume
        assert 1 - 0.15 <= waited <= 1 + LATE, f"answered {waited:.2f}s after resume with delay 1000 ms"
        assert ans["seq"] == held["seq"] + 1
        g.mode("stats normal")

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
        # the guest's lines come in the order it handed the buffers over; the
        # handed-back line is logged when the host returns the extra buffer, after both
        g.vm.wait_until(lambda: g.lines().get(int(m.group(1)) + 1), 5, "the main buffer's line")
        text = "\n".join(g.received)
        seqs = [int(x) for x in re.findall(r"^ballast: stats seq=(\d+)\b", text, re.M)]
        main = int(m.group(1)) + 1
        assert main - 1 > before.seq and seqs.index(main) == seqs.index(main - 1) + 1, seqs[-4:]
        assert text.index(f"ballast: stats seq={main} ") < EXTRA_BACK.search(text).start()
        # Every request answered once, plus the boot buffer, plus the extra buffers.
        show = g.show()
        assert (show["held"], show["failed"]) == (0, 0)
        assert show["seq"] == show["requests"] + 1 + extras_before + 1, show
        # The host holds the main buffer again, exact, and polling goes on.
        snap = g.snapshot(main - 1)
        g.assert_sent(snap, PLAIN)
        g.updates_normal(snap, 2)
        # One shot: it can be sent again once retired.
        assert re.fullmatch(r"ok extra=1 seq=\d+", g.ok("stats extra"))
        g.vm.wait_until(lambda: handed_back(2), 2, "the second extra buffer handed back")

    @pytest.mark.parametrize("persona", list(stats_model.PERSONA_TAGS))
    def test_persona(self, g, persona):
        tags = PERSONA_TAGS[persona]
        g.mode(f"persona {persona}", persona=persona, tags=tags)
        assert g.show()["persona"] == persona
        seq, lu = mark(g)
        u1 = g.next_update(seq, lu)
        u2 = g.next_update(u1.seq, u1.last_update)
        for u in (u1, u2):
            g.assert_sent(u, PLAIN.but(persona=persona))
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
        g.assert_sent(snap, PLAIN.but(duplicate=4).override(5, 0))
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
    g.assert_sent(last_good, PLAIN)
    g.mode("stats zerolen", fill="zerolen")
    before, _ = mark(g)  # buffers after this one are zero-length
    sent = g.wait_show(lambda s: s["seq"] > before, 1 + LATE + 1, "the zero-length answer")
    # The guest logs what it sent: nothing.
    zero_seq = before + 1
    assert g.line(zero_seq) == stats_model.sent(PLAIN.but(fill="zerolen"), last_good.mem)
    assert HOST.profile.zero_length_breaks_device, "the checks below are the profile's fact"
    vm.wait_until(lambda: QEMU_ZERO_LEN in vm.stderr_log.read_text(), 2, "QEMU's complaint on stderr")
    status = vm.qmp().cmd("x-query-virtio-status", path="/machine/peripheral/balloon0/virtio-backend")
    HOST.expect("a zero-length buffer breaks the device", status["broken"], True)
    HOST.expect("a zero-length buffer sets NEEDS_RESET",
                any(s.startswith("VIRTIO_CONFIG_S_NEEDS_RESET") for s in status["status"]["statuses"]), True,
                str(status["status"]))
    # The host keeps the values and last-update of the buffer before, for good.
    frozen = g.quiet(3.2, "device broken by a zero-length buffer")
    assert frozen["last-update"] >= last_good.last_update
    prev = HOST.shows(g.line(zero_seq - 1))
    HOST.expect("stats after a zero-length buffer", frozen["stats"], HOST.shows(g.line(zero_seq), prev))
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
    assert g.cmd("help") == "ok commands=stats,persona,mem,cache,uptime,irq,help"
    mem = g.mem()
    assert mem["managed"] == mem["free"] + mem["allocated"]
    assert re.fullmatch(r"ok id=\d+ bytes=1048576 blocks=\d+", g.cmd("mem alloc 1M"))
    assert vm.proc.poll() is None
    assert vm.stderr_log.read_text().count(QEMU_ZERO_LEN) == 1


# ---- boot-time settings --------------------------------------------------------------


@pytest.mark.parametrize("persona", ["nanos", "windows", "linux-6.6"])
def test_boot_persona(ballast_vm, persona):
    """The priming buffer each persona sends at driver start: nanos 8 bytes (no whole
    entry), windows 70 bytes of 0xff, linux-6.6 a full buffer of current values."""
    vm = ballast_vm(boot="pvh", cmdline=f"persona={persona}", devices=POLLING_1S, extra_args=("-S",))
    g = StatsGuest(vm)
    assert g.host() == unset_stats()
    assert vm.qmp().cmd("cont") == {}
    # The priming buffer: read within 20 ms of QEMU parsing it, a second before the
    # first request (QEMU re-arms its 1 s timer when it parses a buffer).
    priming = vm.wait_until(lambda: (h := g.host())["last-update"] and h, BOOT_TIMEOUT,
                            "the priming buffer", interval=0.02)
    vm.wait_ready(BOOT_TIMEOUT)
    vm.wait_for_log(r"^ballast: ready\nballast: stats seq=1\b", 5)
    first = g.line(1)
    plan = PLAIN.but(persona=persona)
    if persona in stats_model.PRIMING:
        assert first == stats_model.sent(plan, {}, first=True), f"priming buffer: {first}"
    else:  # current values at driver start: the persona's tags, whole
        assert [t for t, _ in first.entries] == list(plan.tags) and first.length == 10 * len(plan.tags), first
    HOST.expect("guest-stats after the priming buffer", priming["stats"], HOST.shows(first))
    assert g.show()["persona"] == persona
    # Later buffers: the persona's tag set, exactly.
    u = g.next_update(1, priming["last-update"])
    g.assert_sent(u, plan)
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
    # Tags 16-19 mixed in: the host keeps the ones it knows.
    u = g.next_update(*mark(g), timeout=1.5 + LATE + 1)
    g.assert_sent(u, PLAIN.but(unknown=True))
    g.mode("stats normal")
    seq, lu = mark(g)
    g.updates_normal(g.next_update(seq, lu), 1)

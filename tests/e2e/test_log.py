"""The log never stands between the host and an answer (kernel/log.c, docs/console.md).

- A console client that stops reading: QEMU stops draining the 16550 once its socket
  has a few hundred unread bytes (a unix-socket chardev; each byte is a buffer of its
  own there). For a minute the host polls every second and moves the balloon: the guest
  answers every request and follows the target; lines that find the log full are
  dropped whole and counted; when the client reads again it gets the drop notice,
  every console answer it asked for, and the guest's counters say exactly which lines
  it missed.
- A flood of console commands while the host polls every second: every command gets
  its answer, in order, and every stats line is whole and in sequence.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Dict, List, Tuple

import stats_model
from ballast_qemu import Console
from balloon_stats import Balloon
from hosts import parse_stats_lines
from mem_show import parse_mem_show
from stats_exact import BOOT_TIMEOUT, POLLING_1S, StatsGuest, ballast_view, diff
from stats_model import PLAIN

STALL_SECONDS = 60
TARGET_AFTER = 10          # seconds into the stall the balloon target is set
PAGE = 4096
RAM = 256 << 20
TARGET = 192 << 20
MAX_GAP = 3.5              # seconds between two host updates at interval 1, at worst under TCG
DROPPED = re.compile(r"^ballast: log: (\d+) lines dropped$", re.M)
SHOW_RE = re.compile(r"ok seq=(\d+) requests=(\d+) paused=0 held=0 failed=0 persona=ballast log_dropped=(\d+)")
HELP = "ok commands=stats,persona,mem,cache,uptime,irq,help"


def read_answer(s: socket.socket, timeout: float) -> Tuple[str, bytes]:
    """Reads until one ok/err line; returns it and whatever came after it."""
    buf = b""
    deadline = time.monotonic() + timeout
    s.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        buf += chunk
        for line in buf.decode(errors="replace").replace("\r", "").split("\n")[:-1]:
            if line.startswith(("ok", "err")):
                return line, buf
    raise TimeoutError(f"no answer within {timeout}s; got {buf[-300:]!r}")


def test_stalled_console(ballast_vm):
    vm = ballast_vm(boot="pvh", memory="256M", devices=POLLING_1S, console_unix=True)
    vm.wait_ready(BOOT_TIMEOUT)
    qmp = vm.qmp()
    bal = Balloon(vm)

    # A client with the smallest receive buffer: it reads one answer, then stops.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(str(vm.console_sock))
    s.sendall(b"mem show\r")
    answer, _ = read_answer(s, 10)
    mem_before = parse_mem_show(answer)
    commands = ["help"] + ["mem show"] * 8 + ["stats show"]
    s.sendall(b"".join(c.encode() + b"\r" for c in commands))

    # The stall: nobody reads for a minute; the host polls and moves the balloon.
    log_size0 = vm.serial_log.stat().st_size
    readings: List[Tuple[float, Dict]] = []
    t0 = time.monotonic()
    target_at = reached_at = None
    while (now := time.monotonic() - t0) < STALL_SECONDS:
        if target_at is None and now >= TARGET_AFTER:
            qmp.cmd("balloon", value=TARGET)
            target_at = now
        if target_at is not None and reached_at is None and qmp.cmd("query-balloon")["actual"] == TARGET:
            reached_at = now
        readings.append((now, bal.stats()))
        time.sleep(0.2)
    stalled_log_growth = vm.serial_log.stat().st_size - log_size0

    # The UART really was stopped (else this test proves nothing): without a reader
    # a minute of answers is ~25 KB of log.
    assert stalled_log_growth < 4096, f"the serial log grew by {stalled_log_growth} bytes: the UART never stalled"
    # Every request answered: last-update kept moving, never more than an interval
    # and TCG's slack apart ...
    changes = [t for (t, a), (_, b) in zip(readings, readings[1:]) if a["last-update"] != b["last-update"]]
    gaps = [b - a for a, b in zip([0.0] + changes, changes + [STALL_SECONDS])]
    assert len(changes) >= STALL_SECONDS // 2 and max(gaps) <= MAX_GAP, (
        f"{len(changes)} host updates in {STALL_SECONDS}s, longest gap {max(gaps):.1f}s")
    # ... and the balloon followed the target.
    assert reached_at is not None, f"actual {qmp.cmd('query-balloon')['actual']}, target {TARGET}"

    # The client reads again: everything it asked for, then the guest's counters.
    vm._console = con = Console(None, 10, vm.console_eol, sock=s)
    g = StatsGuest(vm)
    got = con.answers(len(commands), timeout=30)
    assert got[0] == HELP, got[0]
    mems = [parse_mem_show(a) for a in got[1:9]]
    assert SHOW_RE.fullmatch(got[9]), got[9]
    m = SHOW_RE.fullmatch(g.cmd("stats show"))
    assert m, g.received[-1]
    seq_now, dropped = int(m.group(1)), int(m.group(3))
    mem_after = g.mem()
    assert mem_after["balloon_pages"] == (RAM - TARGET) // PAGE and mem_after["balloon_target"] == mem_after["balloon_pages"]
    for mm in mems:  # each answer is a real mem show of its moment: before or after the target
        assert mm["balloon_pages"] in (0, mem_after["balloon_pages"]) or mm["balloon_inflating"], mm

    # Lines: what the log file has from before the client connected, and the socket.
    log_lines = parse_stats_lines(vm.log_text(), strict=False)
    text = "\n".join(g.received)
    sock_lines = parse_stats_lines(text)
    lines = {**{k: v for k, v in log_lines.items() if k not in sock_lines}, **sock_lines}
    notices = [int(n) for n in DROPPED.findall(text)]
    assert notices, "no 'lines dropped' notice though the log overflowed"
    assert sum(notices) == dropped, f"notices {notices}, log_dropped={dropped}"
    missing = [q for q in range(1, seq_now + 1) if q not in lines]
    target_lines = len(re.findall(r"^ballast: virtio-balloon \S+: host target num_pages=", vm.log_text() + text, re.M))
    assert dropped == len(missing) + (1 - min(target_lines, 1)), (
        f"log_dropped={dropped}, stats lines missing {len(missing)}: {missing[:10]}..., target line seen {target_lines}")
    assert dropped > 0

    # Exact values. Host readings before the target are the counters before it, those
    # from two seconds after the balloon settled are the counters after it.
    before, after = ballast_view(mem_before), ballast_view(mem_after)
    for t, r in readings:
        if t < target_at:
            assert r["stats"] == before, f"at {t:.1f}s: {diff(r['stats'], before)}"
        elif t > reached_at + 2:
            assert r["stats"] == after, f"at {t:.1f}s: {diff(r['stats'], after)}"
    # Every line that got out is ballast's plain buffer of one of those moments (a
    # buffer answered while the inflate ran may hold values in between: at most two).
    plain = (stats_model.sent(PLAIN, mem_before), stats_model.sent(PLAIN, mem_after))
    between = [q for q, sent in lines.items() if sent not in plain]
    assert len(between) <= 2, f"lines that are neither before nor after the target: {between}"
    # And now, at rest, exact as always: from the next answer on (the last ones' lines
    # may have been among those dropped).
    snap = g.snapshot(seq_now)
    g.assert_sent(snap, PLAIN)


def test_console_flood_while_polled(ballast_vm):
    vm = ballast_vm(boot="pvh", devices=POLLING_1S)
    vm.wait_ready(BOOT_TIMEOUT)
    g = StatsGuest(vm)
    first = g.show()["seq"]
    want = [(c, pat) for c, pat in (
        ("mem show", None), ("stats show", SHOW_RE), ("help", re.compile(re.escape(HELP))),
        ("uptime", re.compile(r"ok ticks=\d+ tick_ms=10 tsc_ms=\d+")),
        ("irq", re.compile(r"ok (?:[a-z0-9+-]+@0x[0-9a-f]+=\d+ ?)+")),
        ("cache show", re.compile(r"ok cached=0 .*")))]
    con = vm.console_client()
    # Batches of 100 commands sent at once, until the host has polled five times
    # during the flood (about 5 s; a batch's answers take about half a second).
    t0 = time.monotonic()
    rounds = 0
    while g.show()["seq"] < first + 5:
        assert time.monotonic() - t0 < 120, "the host did not poll five times in 2 minutes of console traffic"
        batch = [want[(rounds * 7 + i) % len(want)] for i in range(100)]
        rounds += 1
        con.send_raw(b"".join(c.encode() + b"\r" for c, _ in batch))
        answers = con.answers(len(batch), timeout=120)
        for (cmd, pat), got in zip(batch, answers):
            if pat is None:
                parse_mem_show(got)
            else:
                assert pat.fullmatch(got), f"{cmd!r} answered {got!r}"
    # Every stats line on the socket is whole, in order, none missing, none dropped.
    lines = parse_stats_lines("\n".join(g.received))
    seqs = sorted(lines)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"stats lines missing: {seqs}"
    assert int(SHOW_RE.fullmatch(g.cmd("stats show")).group(3)) == 0
    for line in g.received:
        assert not ("ballast: " in line and not line.startswith("ballast: ")), f"spliced: {line!r}"

"""A hostile console: thousands of random lines (random bytes, overlong lines, valid
commands with absurd arguments) fed to a running guest. Every line gets exactly one
answer, the page accounting holds, and the guest still answers stats exactly.

The seed is fixed and printed; BALLAST_CONSOLE_LINES sets the count (10,000 by
default). Lines go in batches, each batch's answers counted before the next, so a
lost or doubled answer is pinned to its batch.
"""

import os
import random

from ballast_qemu import parse_kv
from balloon_stats import Balloon

SEED = 0xBA11A57
LINES = int(os.environ.get("BALLAST_CONSOLE_LINES", "10000"))
BATCH = 100
LINE_MAX = 255  # docs/console.md

# Valid words with absurd arguments. Nothing that breaks the device for good
# (stats zerolen) or stops answering (stats pause): the guest must answer stats
# exactly at the end.
ABSURD = [
    "mem alloc 99999999999G", "mem alloc 0", "mem alloc -1", "mem alloc 18446744073709551616",
    "mem free 0", "mem free 99999", "mem free x", "mem huge 4097", "mem huge 0x0",
    "mem touch 64G", "mem touch 0", "mem show extra words here",
    "cache grow 1T", "cache grow 0x", "cache drop now", "cache",
    "stats delay 600001", "stats delay 18446744073709551616", "stats set 16 1", "stats set nope 1",
    "stats set total-memory 18446744073709551616", "stats duplicate 99", "stats order sideways",
    "persona ../../etc/passwd", "persona", "help me", "stats", "mem",
    "a b c d e f g h i", "\t\t", "   ", "",
]


def random_line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.4:  # random bytes, no line ends inside
        return bytes(b for b in rng.randbytes(rng.randint(0, 80)) if b not in b"\r\n")
    if kind < 0.5:  # overlong, printable
        return b"x" * rng.randint(LINE_MAX + 1, 2000)
    if kind < 0.6:  # exactly at and just over the limit
        return b"y" * rng.choice([LINE_MAX, LINE_MAX + 1])
    return rng.choice(ABSURD).encode()


def test_hostile_console(ballast_vm):
    rng = random.Random(SEED)
    print(f"seed=0x{SEED:x} lines={LINES}")
    vm = ballast_vm(boot="pvh", memory="128M")
    vm.wait_ready(timeout=30)
    con = vm.console_client()
    sent = 0
    while sent < LINES:
        batch = [random_line(rng) for _ in range(min(BATCH, LINES - sent))]
        # "\r\n": the console's own commands end in "\r", and a "\n" right after
        # a "\r" is that line's end, not an empty line (docs/console.md)
        con.send_raw(b"".join(line + b"\r\n" for line in batch))
        try:
            answers = con.answers(len(batch), timeout=60)
        except TimeoutError as e:
            got = []
            while not con.lines.empty():
                got.append(con.lines.get())
            detail = "\n".join(f"{i}: {len(l)} bytes {l[:60]!r}" for i, l in enumerate(batch))
            raise AssertionError(f"batch starting at line {sent}: {e}\nlines:\n{detail}\nleft: {got}") from None
        assert len(answers) == len(batch)
        sent += len(batch)
        # nothing more than one answer a line: the next command's answer is its own
        assert vm.console("stats show").startswith("ok seq=")
    for cmd in ("stats normal", "mem free all", "cache drop"):
        assert vm.console(cmd).startswith("ok"), cmd
    show = parse_kv(vm.console("mem show"))
    assert int(show["managed"]) == int(show["free"]) + int(show["allocated"])
    assert int(show["managed"]) + int(show["offline"]) == int(show["usable"])
    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    balloon.wait_update(update.last_update, 30)

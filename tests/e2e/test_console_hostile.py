"""A hostile console: thousands of random lines (random bytes, overlong lines, valid
commands with absurd arguments) fed to a running guest. Every line gets exactly one
answer, the page accounting holds, and the guest still answers stats exactly.

The seed is fixed and printed; BALLAST_CONSOLE_LINES sets the count (10,000 by
default). Lines go in batches, each batch's answers counted before the next, so a
lost or doubled answer is pinned to its batch.
"""

import os
import random
import re
from collections import Counter
from typing import Optional

from balloon_stats import Balloon
from mem_show import parse_mem_show
from stats_exact import ballast_view, diff

SEED = 0xBA11A57
LINES = int(os.environ.get("BALLAST_CONSOLE_LINES", "10000"))
BATCH = 100
LINE_MAX = 255  # docs/console.md

COMMANDS = ("stats", "persona", "mem", "cache", "uptime", "irq", "help")  # `help` (checked below)
STATS_USAGE = ("err usage: stats pause|resume|show|latency|extra|empty|zerolen|ff|unknown|truncate|overlong|normal"
               " | delay <ms> | duplicate <tag> | order reverse | set <tag> <value>")
MEM_USAGE = "err usage: mem show | alloc <size> | free <id|all> | touch <size> | huge <n>"
CACHE_USAGE = "err usage: cache grow <size> | drop | show"
BAD_TAG = "(a tag is 0 to 15 or a name such as free-memory)"

# Valid words with absurd arguments, and the one answer each must get (docs/console.md).
# Nothing that breaks the device for good (stats zerolen) or stops answering (stats
# pause): the guest must answer stats exactly at the end. No allocation succeeds, so
# no answer depends on what came before.
ABSURD = {
    "mem alloc 99999999999G": "err bad size '99999999999G' (bytes, or with K, M, G)",
    "mem alloc 0": "err bad size '0' (bytes, or with K, M, G)",
    "mem alloc -1": "err bad size '-1' (bytes, or with K, M, G)",
    "mem alloc 18446744073709551616": "err bad size '18446744073709551616' (bytes, or with K, M, G)",
    "mem free 0": "err bad id '0' (a number or all)",
    "mem free 99999": "err no allocation with id 99999",
    "mem free x": "err bad id 'x' (a number or all)",
    "mem huge 4097": "err bad count '4097' (1 to 4096)",
    "mem huge 0x0": "err bad count '0x0' (1 to 4096)",
    "mem touch 64G": "err heap cannot grow by 68719476736 bytes",
    "mem touch 0": "err bad size '0'",
    "mem show extra words here": MEM_USAGE,
    "cache grow 1T": "err bad size '1T'",
    "cache grow 0x": "err bad size '0x'",
    "cache drop now": CACHE_USAGE,
    "cache": CACHE_USAGE,
    "stats delay 600001": "err bad delay '600001' (0 to 600000 ms)",
    "stats delay 18446744073709551616": "err bad delay '18446744073709551616' (0 to 600000 ms)",
    "stats set 16 1": f"err bad tag '16' {BAD_TAG}",
    "stats set nope 1": f"err bad tag 'nope' {BAD_TAG}",
    "stats set total-memory 18446744073709551616":
        "err bad value '18446744073709551616' (0 to 18446744073709551615)",
    "stats duplicate 99": f"err bad tag '99' {BAD_TAG}",
    "stats order sideways": "err bad order 'sideways' (reverse is the one other order)",
    "stats frobnicate": STATS_USAGE,
    "persona ../../etc/passwd": "err unknown persona (ballast linux-6.6 linux-6.12 windows nanos)",
    "persona": "err usage: persona ballast linux-6.6 linux-6.12 windows nanos",
    "help me": "ok commands=" + ",".join(COMMANDS),
    "irq now": "err usage: irq",
    "uptime 5": "err usage: uptime",
    "stats": STATS_USAGE,
    "mem": MEM_USAGE,
    "a b c d e f g h i": "err too many words (at most 8)",
    "\t\t": "err empty command",
    "   ": "err empty command",
    "": "err empty command",
}
NORMAL_ANSWER = ("ok persona=ballast paused=0 delay_ms=0 fill=entries unknown=0 duplicate=-1 truncate=0 pad=0 "
                 "overrides=0x0 tags=16")
UNMOVED = ("free", "allocated", "cached", "offline", "heap_bytes", "heap_in_use", "allocs", "frees")
KINDS = (("too long", "err line too long"), ("bad byte", "err control"), ("empty", "err empty"),
         ("too many words", "err too many"), ("unknown command", "err unknown command"))
PRINTABLE = frozenset(range(0x20, 0x7f)) | {0x09}


def expected_answer(line: bytes) -> Optional[str]:
    """The one answer the console gives `line` (kernel/console/console.c: too long
    first, then a bad byte, then the words), or None for a random line that happens
    to start with a command word (then any one well-formed answer will do)."""
    kept = [b for b in line if b in PRINTABLE]  # bad bytes are flagged, not stored
    if len(kept) > LINE_MAX:
        return f"err line too long (at most {LINE_MAX} bytes)"
    if len(kept) != len(line):
        return "err control or non-ASCII byte in line"
    text = line.decode("ascii")
    if text in ABSURD:
        return ABSURD[text]
    words = re.split(r"[ \t]+", text.strip(" \t"))
    if words == [""]:
        return "err empty command"
    if len(words) > 8:
        return "err too many words (at most 8)"
    return None if words[0] in COMMANDS else "err unknown command (try help)"


def random_line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.4:  # random bytes, no line ends inside
        return bytes(b for b in rng.randbytes(rng.randint(0, 80)) if b not in b"\r\n")
    if kind < 0.45:  # long random bytes: about as many printable ones as the limit
        return bytes(b for b in rng.randbytes(rng.randint(400, 1000)) if b not in b"\r\n")
    if kind < 0.5:  # overlong, printable
        return b"x" * rng.randint(LINE_MAX + 1, 2000)
    if kind < 0.6:  # exactly at and just over the limit
        return b"y" * rng.choice([LINE_MAX, LINE_MAX + 1])
    return rng.choice(list(ABSURD)).encode()


def test_hostile_console(ballast_vm):
    rng = random.Random(SEED)
    print(f"seed=0x{SEED:x} lines={LINES}")
    vm = ballast_vm(boot="pvh", memory="128M")
    vm.wait_ready(timeout=30)
    before = parse_mem_show(vm.console("mem show"))
    con = vm.console_client()
    sent = lucky = 0
    kinds: Counter = Counter()
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
        for i, (line, got) in enumerate(zip(batch, answers)):
            want = expected_answer(line)
            if want is None:
                assert re.fullmatch(r"(ok|err) \S.*", got), (sent + i, line, got)
                lucky += 1
            else:
                assert got == want, f"line {sent + i} ({len(line)} bytes, {line[:60]!r}): {got!r}, want {want!r}"
            kinds[next((k for k, p in KINDS if got.startswith(p)), "a command's own answer")] += 1
        sent += len(batch)
        # nothing more than one answer a line: the next command's answer is its own
        # (and no log line lost: answers wait for room, nothing else is logged)
        assert re.fullmatch(r"ok seq=\d+ requests=\d+ paused=0 held=0 failed=0 persona=ballast log_dropped=0",
                            vm.console("stats show"))
    print(f"answers by kind: {dict(sorted(kinds.items()))}; random lines starting with a command: {lucky}")
    assert vm.console("stats normal") == NORMAL_ANSWER
    assert vm.console("mem free all") == "ok freed=0 allocations=0"
    assert vm.console("cache drop") == "ok dropped=0"
    # Nothing the flood did kept a page or a heap byte.
    after = parse_mem_show(vm.console("mem show"))
    assert {k: after[k] for k in UNMOVED} == {k: before[k] for k in UNMOVED}, (before, after)
    assert after["managed"] == after["free"] + after["allocated"]
    assert after["managed"] + after["offline"] == after["usable"]
    # And the stats are still answered, exactly: the host's values are the guest's
    # line (wait_update) and the guest's counters.
    balloon = Balloon(vm)
    assert balloon.set_interval(1) == {}
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    update = balloon.wait_update(update.last_update, 30)
    want = ballast_view(parse_mem_show(vm.console("mem show")))
    assert update.stats == want, diff(update.stats, want)

#!/usr/bin/env python3
"""What a host's balloon device does, behaviour by behaviour, beside what each known
profile (hosts.py) says: the report for a QEMU build the suite has no profile for, and
a check of the profiles on the builds it has.

    make -f Makefile.qemu host-report [HOST=qemu-10.0 | QEMU=/path/to/qemu-system-x86_64]

writes build/host-report.md. Each row is one experiment on a guest booted for it (PVH
on q35, TCG): what this host did, what every profile says, and which profiles that
matches. Latency and throughput are measurements, not facts: the profiles have none.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ballast_qemu import BallastVM, build_dir, parse_kv  # noqa: E402
from balloon_stats import INTERVAL, PERIPHERAL_PATH, up_line  # noqa: E402
from hosts import ALL_STAT_NAMES, HOST, PROFILES, UNSET, Profile, parse_stats_lines  # noqa: E402

POLL_1S = ("-device", "virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=1")
BACKEND = PERIPHERAL_PATH + "/virtio-backend"
PAGE = 4096


@dataclass
class Row:
    behaviour: str
    observed: str
    profile: Optional[Callable[[Profile], str]]  # what a profile says, in the same words
    note: str = ""  # what the host said besides (not compared)


class Probe:
    """One guest for one experiment, killed afterwards."""

    def __init__(self, tmp: Path, name: str, devices=POLL_1S, **kwargs):
        self.vm = BallastVM(tmp / name, boot="pvh", devices=devices, **kwargs)

    def __enter__(self) -> BallastVM:
        self.vm.start()
        self.vm.wait_ready(60)
        return self.vm

    def __exit__(self, *exc) -> None:
        self.vm.kill()


def gs(vm: BallastVM) -> dict:
    return vm.qmp().cmd("qom-get", path=PERIPHERAL_PATH, property="guest-stats")


def seq(vm: BallastVM) -> int:
    return int(parse_kv(vm.console("stats show"))["seq"])


def next_update(vm: BallastVM, timeout: float = 8) -> dict:
    """guest-stats once the host has parsed a buffer the guest built after this call."""
    s0, lu0 = seq(vm), gs(vm)["last-update"]
    return vm.wait_until(lambda: (h := gs(vm))["last-update"] != lu0 and seq(vm) > s0 and h, timeout,
                         "a new host update")


def received_lines(vm: BallastVM, s: int):
    return vm.wait_until(lambda: parse_stats_lines("\n".join(vm.received())).get(s), 5, f"line seq={s}")


def probe_keys(tmp: Path) -> Row:
    with Probe(tmp, "keys") as vm:
        keys = list(next_update(vm)["stats"])
    n = len(keys)
    known = set(keys) == set(ALL_STAT_NAMES[:n])  # QEMU's dict is in hash order, not tag order
    return Row("stats keys in guest-stats", f"{n} (tags 0-{n - 1})" if known else f"{n}: {keys}",
               lambda p: f"{p.stat_tags} (tags 0-{p.stat_tags - 1})")


def probe_mode(tmp: Path, name: str, commands: List[str], judge: Callable[[BallastVM, dict, dict], str]) -> str:
    with Probe(tmp, name) as vm:
        vm.console("help")  # the console connected: lines from now on are on the socket
        before = next_update(vm)
        for c in commands:
            assert vm.console(c).startswith("ok"), c
        after = next_update(vm)
        return judge(vm, before, after)


def probe_unknown(tmp: Path) -> Row:
    def judge(vm, before, after):
        extra = sorted(set(after["stats"]) - set(ALL_STAT_NAMES))
        return "dropped" if not extra and set(after["stats"]) == set(before["stats"]) else f"shown: {extra}"
    return Row("unknown tags (16-19)", probe_mode(tmp, "unknown", ["stats unknown"], judge), lambda p: "dropped")


def probe_duplicate(tmp: Path) -> Row:
    def judge(vm, before, after):
        s = seq(vm)
        sent = received_lines(vm, s)
        free = [v for t, v in sent.entries if t == 4]
        got = gs(vm)["stats"]["stat-free-memory"]
        return "last wins" if got == free[-1] else "first wins" if got == free[0] else f"neither ({got} of {free})"
    return Row("a tag twice in one buffer", probe_mode(tmp, "dup", ["stats duplicate free-memory"], judge),
               lambda p: "last wins" if p.last_duplicate_wins else "first wins")


def probe_truncate(tmp: Path) -> Row:
    def judge(vm, before, after):
        return ("partial entry dropped" if after["stats"]["stat-disk-caches"] == UNSET
                else f"partial entry read as {after['stats']['stat-disk-caches']}")
    return Row("a partial last entry (linux-6.6, truncated by 3 bytes)",
               probe_mode(tmp, "trunc", ["persona linux-6.6", "stats truncate"], judge),
               lambda p: "partial entry dropped" if p.partial_entry_dropped else "partial entry read")


def probe_replace(tmp: Path) -> Row:
    def judge(vm, before, after):
        unset = [k for k, v in after["stats"].items() if v == UNSET]
        return "stats not in the buffer become unset" if "stat-htlb-pgalloc" in unset else "kept from before"
    return Row("a buffer without some tags (windows: tags 0-5)", probe_mode(tmp, "replace", ["persona windows"], judge),
               lambda p: "stats not in the buffer become unset" if p.every_buffer_replaces_all else "kept from before")


def probe_zerolen(tmp: Path) -> Row:
    with Probe(tmp, "zerolen") as vm:
        next_update(vm)
        vm.console("stats zerolen")
        vm.wait_until(lambda: parse_kv(vm.console("stats show"))["failed"] == "1" or
                      vm.qmp().cmd("x-query-virtio-status", path=BACKEND)["broken"], 8, "the zero-length answer")
        broken = vm.qmp().cmd("x-query-virtio-status", path=BACKEND)["broken"]
        stderr = vm.stderr_log.read_text()
        why = "QEMU: " + stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return Row("a zero-length stats buffer", "device broken (NEEDS_RESET)" if broken else "accepted",
               lambda p: "device broken (NEEDS_RESET)" if p.zero_length_breaks_device else "accepted", why)


def probe_second(tmp: Path) -> Row:
    with Probe(tmp, "extra") as vm:
        next_update(vm)
        assert vm.console("stats extra").startswith("ok extra=1")
        try:
            vm.wait_until(lambda: "the host handed back the extra buffer" in "\n".join(vm.received()), 5,
                          "the extra buffer back")
            back = "the held buffer is handed back, the new one kept"
        except AssertionError:
            back = "not handed back within 5 s"
        next_update(vm)
    return Row("a second stats buffer while the host holds one", back + "; polling goes on",
               lambda p: ("the held buffer is handed back, the new one kept" if p.second_buffer_returns_first
                          else "?") + "; polling goes on")


def probe_held(tmp: Path) -> Row:
    with Probe(tmp, "held") as vm:
        next_update(vm)
        vm.console("stats pause")
        vm.wait_until(lambda: parse_kv(vm.console("stats show"))["held"] == "1", 5, "a held request")
        lu = gs(vm)["last-update"]
        qmp = vm.qmp()
        qmp.cmd("qom-set", path=PERIPHERAL_PATH, property=INTERVAL, value=2)
        qmp.cmd("qom-set", path=PERIPHERAL_PATH, property=INTERVAL, value=1)
        t0 = time.monotonic()
        moved = False
        while time.monotonic() - t0 < 3:
            moved |= gs(vm)["last-update"] != lu
            time.sleep(0.1)
        t1 = time.monotonic()
        vm.console("stats resume")
        vm.wait_until(lambda: gs(vm)["last-update"] != lu, 5, "the late answer")
        late = time.monotonic() - t1
    meanwhile = "no request meanwhile" if not moved else "requests went on"
    answer = "the late answer is taken at once" if late < 1.5 else f"the late answer taken after {late:.1f} s"
    return Row("a buffer the guest holds; the interval set again meanwhile", f"{meanwhile}; {answer}",
               lambda p: "no request meanwhile; the late answer is taken at once")


def probe_interval(tmp: Path) -> Row:
    with Probe(tmp, "interval") as vm:
        qmp = vm.qmp()
        out = []
        for value, _ in HOST.profile.interval_errors:
            r = qmp.cmd_raw("qom-set", {"path": PERIPHERAL_PATH, "property": INTERVAL, "value": int(value)})
            out.append(f"{value}: {r['error']['desc'] if 'error' in r else 'accepted'}")
        r = qmp.cmd_raw("qom-set", {"path": PERIPHERAL_PATH, "property": INTERVAL, "value": 2**32 - 1})
        out.append(f"{2**32 - 1}: {'accepted' if 'error' not in r else r['error']['desc']}")
    return Row("guest-stats-polling-interval limits", "; ".join(out),
               lambda p: "; ".join(f"{v}: {m}" for v, m in p.interval_errors) + f"; {p.max_interval}: accepted")


def probe_reset(tmp: Path) -> Row:
    with Probe(tmp, "reset") as vm:
        next_update(vm)
        qmp = vm.qmp()
        qmp.cmd("stop")
        held = gs(vm)
        qmp.cmd("system_reset")
        after = gs(vm)
        qmp.cmd("cont")
    if after == held:
        seen = "stats and last-update kept"
    elif after["last-update"] == 0 and set(after["stats"].values()) == {UNSET}:
        seen = "stats unset, last-update 0 until the guest answers"
    else:
        seen = f"other: {after}"
    return Row("system_reset", seen, lambda p: "stats unset, last-update 0 until the guest answers"
               if p.reset_clears_stats else "stats and last-update kept")


def probe_msix(tmp: Path) -> Row:
    seen = []
    with Probe(tmp, "msix-default", devices=("-device", "virtio-balloon-pci,id=balloon0")) as vm:
        seen.append(f"default: {up_line(vm)['interrupts']}")
    try:
        for n in (1, 4):
            with Probe(tmp, f"msix-{n}", devices=("-device", f"virtio-balloon-pci,id=balloon0,vectors={n}")) as vm:
                seen.append(f"vectors={n}: {up_line(vm)['interrupts']}")
    except Exception:
        seen.append("no vectors property")
    return Row("interrupts (q35, as ballast takes them)", "; ".join(seen),
               lambda p: f"default: {p.irq_mode(True)}; " +
               (f"vectors=1: {p.irq_mode(True, 1)}; vectors=4: {p.irq_mode(True, 4)}" if p.has_vectors_property
                else "no vectors property"))


def probe_packed(tmp: Path) -> Row:
    seen = []
    for machine, dev in (("q35", "virtio-balloon-pci,id=balloon0,packed=on"),):
        with Probe(tmp, f"packed-{machine}", devices=("-device", dev)) as vm:
            seen.append(f"virtio-pci: rings={up_line(vm)['rings']}")
    return Row("packed=on (VIRTIO_F_RING_PACKED offered)", "; ".join(seen), lambda p: "virtio-pci: rings=packed")


def probe_queue_sizes(tmp: Path) -> Row:
    sizes = {}
    for name, opts in (("modern", ""), ("legacy", ",disable-modern=on")):
        with Probe(tmp, f"queues-{name}",
                   devices=("-device", f"virtio-balloon-pci,id=balloon0,free-page-reporting=on{opts}")) as vm:
            qmp = vm.qmp()
            sizes[name] = [qmp.cmd("x-query-virtio-queue-status", path=BACKEND, queue=q)["vring-num-default"]
                           for q in range(4)]
    return Row("queue sizes the device offers (inflate, deflate, stats, reporting)",
               f"{sizes['modern']} (legacy {sizes['legacy']})",
               lambda p: f"{[*p.queue_sizes, p.reporting_queue_size]} (legacy {[*p.queue_sizes, p.reporting_queue_size]})")


def probe_latency(tmp: Path) -> Row:
    with Probe(tmp, "latency") as vm:
        vm.wait_until(lambda: int(parse_kv(vm.console("stats show"))["requests"]) >= 20, 60, "20 requests")
        kv = parse_kv(vm.console("stats latency"))
    return Row("stats answer latency, guest side (request interrupt to re-added)",
               f"p50 {int(kv['p50_ns']) / 1000:.1f} us, p99 {int(kv['p99_ns']) / 1000:.1f} us "
               f"({kv['samples']} samples)", None)


def probe_throughput(tmp: Path) -> Row:
    ram = 512 << 20
    with Probe(tmp, "throughput", memory="512M") as vm:
        qmp = vm.qmp()
        rates = {}
        for what, value in (("inflate", ram // 2), ("deflate", ram)):
            t0 = time.monotonic()
            qmp.cmd("balloon", value=value)
            vm.wait_until(lambda: qmp.cmd("query-balloon")["actual"] == value, 60, what, interval=0.005)
            rates[what] = (ram // 2 // PAGE) / (time.monotonic() - t0)
    return Row("balloon throughput (256 MiB of 512 MiB)",
               f"inflate {rates['inflate']:,.0f} pages/s, deflate {rates['deflate']:,.0f} pages/s", None)


PROBES = [probe_keys, probe_unknown, probe_duplicate, probe_truncate, probe_replace, probe_zerolen,
          probe_second, probe_held, probe_interval, probe_reset, probe_msix, probe_packed, probe_queue_sizes,
          probe_latency, probe_throughput]


def report(rows: List[Row]) -> str:
    names = list(PROFILES)
    out = [f"# Host report: {HOST.name}", "",
           f"QEMU {'.'.join(map(str, HOST.version))} (`{sys.argv[0]}`, {time.strftime('%Y-%m-%d')}); "
           f"the suite {'has a profile for it' if HOST.known else 'has no profile for it: nearest ' + HOST.profile.name}.",
           "", "| behaviour | this host | " + " | ".join(names) + " | matches |",
           "|---|---|" + "---|" * len(names) + "---|"]
    for r in rows:
        says = [r.profile(PROFILES[n]) if r.profile else "-" for n in names]
        match = ", ".join(n for n, s in zip(names, says) if s == r.observed) if r.profile else "(measured)"
        seen = f"{r.observed} ({r.note})" if r.note else r.observed
        out.append(f"| {r.behaviour} | {seen} | " + " | ".join(says) + f" | {match or '**none**'} |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=build_dir() / "host-report.md")
    args = ap.parse_args()
    rows = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ballast-host-report-") as tmp:
        for probe in PROBES:
            t0 = time.monotonic()
            try:
                rows.append(probe(Path(tmp)))
            except Exception as e:  # a probe that fails is a row too: the report goes on
                failed += 1
                rows.append(Row(probe.__name__.removeprefix("probe_"), f"probe failed: {e!s:.200}", None))
                traceback.print_exc()
            print(f"host-report: {probe.__name__} {time.monotonic() - t0:.1f}s", file=sys.stderr)
    text = report(rows)
    args.out.write_text(text)
    print(text)
    print(f"host-report: {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

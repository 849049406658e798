#!/usr/bin/env python3
"""Boot and statistics benchmark: prints a markdown table and writes JSON.

For N boots (TCG unless BALLAST_ACCEL says otherwise) it measures
- QEMU start -> "ballast: ready" on the serial log,
- the kernel's own share of that (entry -> ready, from the TSC: boot_ms),
- QEMU start -> first statistics on the host side (guest-stats last-update != 0,
  polled over QMP with the polling interval set at boot),
and, from one guest left running, the guest-side stats answer latency (request
interrupt -> buffer re-added, TSC) over at least 30 requests, plus the image size.

Figures only: nothing here asserts a time. Usage:
    build/venv/bin/python bench/boot_stats.py [--runs 5] [--json build/bench.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from ballast_qemu import BallastVM, image_path, parse_kv  # noqa: E402

BALLOON_PATH = "/machine/peripheral/balloon0"


def wait_until(predicate, timeout: float, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met within %.1f s" % timeout)


def one_boot(workdir: Path, memory: str) -> dict:
    vm = BallastVM(workdir, memory=memory,
                   devices=("-device", "virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=1"))
    vm.start()
    try:
        qmp = vm.qmp()

        def first_stats():
            r = qmp.cmd("qom-get", path=BALLOON_PATH, property="guest-stats")
            return r["last-update"] != 0

        wait_until(first_stats, 60)
        t_stats = time.monotonic() - vm.t_start
        vm.wait_ready(60)
        boot_ms = float(vm.wait_for_log(r"ballast: summary .*boot_ms=([0-9.]+)", 5).group(1))
        return {"ready_s": vm.ready_seconds, "first_stats_s": t_stats, "kernel_boot_ms": boot_ms}
    finally:
        vm.kill()


def latency(workdir: Path, memory: str, requests: int) -> dict:
    vm = BallastVM(workdir, memory=memory,
                   devices=("-device", "virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=1"))
    vm.start()
    try:
        vm.wait_ready(60)
        # QEMU's timer runs on the virtual clock at one request a second at most;
        # wait for enough answers, then read the guest's own TSC figures.
        vm.wait_for_log(rf"ballast: stats seq={requests + 1} ", requests * 3 + 30)
        ans = parse_kv(vm.console("stats latency"))
        return {k: int(v) for k, v in ans.items()}
    finally:
        vm.kill()


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", default="256M")
    ap.add_argument("--latency-requests", type=int, default=30)
    ap.add_argument("--json", default=str(REPO / "build" / "bench.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ballast-bench-") as tmp:
        boots = [one_boot(Path(tmp) / f"boot{i}", args.memory) for i in range(args.runs)]
        lat = latency(Path(tmp) / "latency", args.memory, args.latency_requests)

    result = {
        "runs": args.runs, "memory": args.memory,
        "ready_s": summarize([b["ready_s"] for b in boots]),
        "first_stats_s": summarize([b["first_stats_s"] for b in boots]),
        "kernel_boot_ms": summarize([b["kernel_boot_ms"] for b in boots]),
        "stats_latency": lat,
        "ballast_efi_bytes": image_path().stat().st_size,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")

    print(f"| figure (efi on q35, TCG, -m {args.memory}, {args.runs} runs) | median | min | max |")
    print("|---|---|---|---|")
    for key, label, unit in (("ready_s", "QEMU start to `ballast: ready`", "s"),
                             ("first_stats_s", "QEMU start to first stats on the host", "s"),
                             ("kernel_boot_ms", "kernel entry to ready (TSC)", "ms")):
        s = result[key]
        print(f"| {label} ({unit}) | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} |")
    print(f"| stats answer latency in the guest, {lat['samples']} requests (us) "
          f"| p50 {lat['p50_ns'] / 1000:.1f} | p99 {lat['p99_ns'] / 1000:.1f} | max {lat['max_ns'] / 1000:.1f} |")
    print(f"| ballast.efi size (bytes) | {result['ballast_efi_bytes']} | | |")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

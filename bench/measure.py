"""One measurement each: a boot (ready, first host-side stats), a trivial image's run
to its exit, the stats answer latency from QEMU's trace events, and inflate/deflate
throughput. Every QEMU comes from tests/e2e/ballast_qemu.BallastVM, so the bench and
the e2e suite start QEMU the same way (same chardevs, QMP, isa-debug-exit).

Clocks: time.monotonic() on the host, from just before QEMU's fork+exec
(BallastVM.t_start). Trace timestamps are QEMU's gettimeofday (-msg timestamp=on).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from ballast_qemu import DEFAULT_ACCEL, QEMU, BallastVM, build_dir, parse_kv, parse_size  # noqa: E402,F401
from balloon_stats import up_line  # noqa: E402
from hosts import HOST  # noqa: E402,F401
from boot_paths import BOOT_PATHS, RING_PATHS, BootPath  # noqa: E402

BALLOON_PATH = "/machine/peripheral/balloon0"
READY = b"ballast: ready"
BOOTING = b"ballast: booting"  # kmain's first line: the firmware/loader share ends here
# OVMF's boot manager on the serial console: before it reads the image from the ESP,
# and before it starts the image (the read in between grows with the image size)
BDS_LOADING = b"BdsDxe: loading"
BDS_STARTING = b"BdsDxe: starting"
MILESTONES = {"bds_loading_s": BDS_LOADING, "bds_starting_s": BDS_STARTING,
              "booting_s": BOOTING, "ready_s": READY}
SUMMARY_RE = re.compile(r"ballast: summary .*boot_ms=([0-9.]+)")
PAGE = 4096

LOG_POLL_S = 0.002      # serial log: the ready time is within ~2 ms (plus the file write)
QMP_POLL_S = 0.005      # guest-stats and query-balloon
BOOT_TIMEOUT = 120.0


# The e2e suite's boot paths (efi-q35, pvh-q35, pvh-pc, pvh-microvm), booted the same way;
# for latency and throughput also with packed rings (pvh-q35-packed, ...).
PATHS = BOOT_PATHS
RING_PATH_NAMES = RING_PATHS
POLLING_1S = "guest-stats-polling-interval=1"


class _LogWatch:
    """Reads only what QEMU appended to the serial log since the last poll and notes
    the host time at which each needle was first seen."""

    def __init__(self, path: Path, t0: float, needles: Sequence[bytes]):
        self.path, self.t0, self.offset, self.carry = path, t0, 0, b""
        self.seen: Dict[bytes, float] = {}
        self.needles = list(needles)

    def poll(self) -> Dict[bytes, float]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.seen
        if data:
            now = time.monotonic() - self.t0
            self.offset += len(data)
            text = self.carry + data  # a needle split across two reads is still found
            for n in self.needles:
                if n not in self.seen and n in text:
                    self.seen[n] = now
            self.carry = text[-64:]
        return self.seen


def boot_once(path: BootPath, workdir: Path, memory: str) -> dict:
    """QEMU start -> `ballast: ready` and -> guest-stats last-update != 0, in one loop
    (the stats can come before the ready line: the driver adds the stats buffer while
    probing, and QEMU stamps last-update when it pops it).

    QMP polling starts only once the kernel's first line is out: qom-get every 5 ms
    from QEMU start slowed OVMF by ~2 s (~35%) under TCG on this 2-core machine, and
    the firmware phase is what the trivial images are compared against. The QMP
    connection itself is made at start and stays idle until then."""
    vm = BallastVM(workdir, memory=memory, **path.vm_kwargs(POLLING_1S))
    try:
        vm.start()
        log = _LogWatch(vm.serial_log, vm.t_start, tuple(MILESTONES.values()))
        qmp = vm.qmp()
        t_stats = None
        next_qmp = 0.0
        deadline = vm.t_start + BOOT_TIMEOUT
        while READY not in log.seen or t_stats is None:
            now = time.monotonic()
            if now > deadline:
                raise vm._fail(f"no ready/stats within {BOOT_TIMEOUT}s")
            if vm.proc.poll() is not None:
                raise vm._fail("QEMU exited during boot")
            log.poll()
            if t_stats is None and now >= next_qmp and (BOOTING in log.seen or READY in log.seen):
                r = qmp.cmd("qom-get", path=BALLOON_PATH, property="guest-stats")
                if r["last-update"] != 0:
                    t_stats = time.monotonic() - vm.t_start
                next_qmp = time.monotonic() + QMP_POLL_S
            time.sleep(LOG_POLL_S)
        m = vm.wait_for_log(SUMMARY_RE.pattern, 10)
        out = {k: log.seen.get(n) for k, n in MILESTONES.items()}
        out.update(first_stats_s=t_stats, kernel_boot_ms=float(m.group(1)))
        return out
    finally:
        vm.kill()


def trivial_once(path: BootPath, image: Path, workdir: Path, memory: str,
                 expect_status: int) -> dict:
    """QEMU start -> exit of a trivial image, on the same command line as ballast's
    boot (same balloon device and polling), only the image differs. The exit time is
    taken by a blocking waitpid, not a poll; a thread notes OVMF's boot manager lines."""
    vm = BallastVM(workdir, memory=memory, image=image, **path.vm_kwargs(POLLING_1S))
    try:
        vm.start()
    except BaseException:
        vm.kill()  # its socket directory
        raise
    log = _LogWatch(vm.serial_log, vm.t_start, (BDS_LOADING, BDS_STARTING))
    done = threading.Event()

    def watch():
        while not done.is_set():
            log.poll()
            time.sleep(LOG_POLL_S)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    watchdog = threading.Timer(BOOT_TIMEOUT, vm.proc.kill)
    watchdog.start()
    try:
        status = vm.proc.wait()
        t_exit = time.monotonic() - vm.t_start
    finally:
        watchdog.cancel()
        done.set()
        watcher.join()
        vm.kill()
    if status != expect_status:
        raise RuntimeError(f"trivial {image.name} on {path.machine}: exit status {status}, "
                           f"expected {expect_status} (log: {vm.stderr_log})")
    log.poll()
    return {"bds_loading_s": log.seen.get(BDS_LOADING),
            "bds_starting_s": log.seen.get(BDS_STARTING), "exit_s": t_exit}


# ---- stats answer latency from QEMU's trace ----------------------------------------

TRACE_EVENTS = ("virtqueue_flush", "virtqueue_pop", "virtio_notify", "virtio_queue_notify")
# log backend with -msg timestamp=on: "<tid>@<sec>.<usec>:<event> <args>"
TRACE_RE = re.compile(r"^\d+@(\d+)\.(\d+):(\w+) (.*)$")
STATS_QUEUE_INDEX = 2  # QEMU 7.2 virtio-balloon: ivq 0, dvq 1, svq 2


def parse_trace(text: str) -> List[Tuple[float, str, Dict[str, str]]]:
    events = []
    for line in text.splitlines():
        m = TRACE_RE.match(line)
        if not m:
            continue
        args = m.group(4).split()
        # integer microseconds: a float of ~1.8e9 s keeps only ~0.2 us
        events.append((int(m.group(1)) * 1_000_000 + int(m.group(2)), m.group(3),
                       dict(zip(args[0::2], args[1::2]))))
    return events


def stats_vq(events) -> Optional[str]:
    """The stats queue's VirtQueue pointer: virtio_queue_notify names the queue
    index; failing that, the queue with the most flushes (one a polling interval)."""
    for _, name, a in events:
        if name == "virtio_queue_notify" and a.get("n") == str(STATS_QUEUE_INDEX):
            return a["vq"]
    counts: Dict[str, int] = {}
    for _, name, a in events:
        if name == "virtqueue_flush":
            counts[a["vq"]] = counts.get(a["vq"], 0) + 1
    return max(counts, key=counts.get) if counts else None


def answer_latencies(events, vq: str) -> Dict[str, List[int]]:
    """Per request, on the stats queue: QEMU's flush of the buffer (the request) to
    its pop of the buffer the guest re-added (the answer); and the guest-visible
    part, virtio_notify (interrupt raised) to virtio_queue_notify (guest kick).
    Microseconds. The first pop (the buffer added at probe) has no flush before it.
    QEMU traces virtqueue_flush on split rings only (virtqueue_split_flush): on packed
    ones the first figure has no samples and the second is the one there is."""
    flush_to_pop, notify_to_kick = [], []
    t_flush = t_notify = None
    for t, name, a in events:
        if a.get("vq") != vq:
            continue
        if name == "virtqueue_flush":
            t_flush = t
        elif name == "virtio_notify":
            t_notify = t
        elif name == "virtio_queue_notify" and t_notify is not None:
            notify_to_kick.append(t - t_notify)
            t_notify = None
        elif name == "virtqueue_pop" and t_flush is not None:
            flush_to_pop.append(t - t_flush)
            t_flush = None
    return {"flush_to_pop": flush_to_pop, "notify_to_kick": notify_to_kick}


def stats_latency(path: BootPath, workdir: Path, memory: str, requests: int,
                  trace_file: Path, device_opts: str = "") -> dict:
    """One guest with stats polling at 1 s and QEMU tracing the virtqueue events;
    run until QEMU has flushed the stats buffer `requests` + 1 times, then read the
    guest's own figure (`stats latency`) and quit QEMU cleanly (the trace log is
    buffered: a SIGKILL could lose its tail)."""
    trace_file.unlink(missing_ok=True)
    extra = [a for ev in TRACE_EVENTS for a in ("-trace", f"enable={ev}")]
    extra += ["-D", str(trace_file), "-msg", "timestamp=on"]
    opts = ",".join(o for o in (POLLING_1S, device_opts) if o)
    vm = BallastVM(workdir, memory=memory, **path.vm_kwargs(opts, extra_args=extra))
    try:
        vm.start()
        vm.wait_ready(BOOT_TIMEOUT)
        interrupts = up_line(vm)["interrupts"]

        def enough():
            ev = parse_trace(trace_file.read_text(errors="replace")) if trace_file.exists() else []
            vq = stats_vq(ev)
            return vq and max(map(len, answer_latencies(ev, vq).values())) >= requests + 1
        vm.wait_until(enough, requests * 3 + 60, "stats requests in the trace", interval=0.5)
        guest = {k: int(v) for k, v in parse_kv(vm.console("stats latency")).items()}
        try:
            vm.qmp().cmd("quit")
        except Exception:  # QEMU may close the socket before answering
            pass
        vm.wait_exit(30)
    finally:
        vm.kill()
    events = parse_trace(trace_file.read_text(errors="replace"))
    vq = stats_vq(events)
    lat = answer_latencies(events, vq)
    return {"vq": vq, "trace_file": str(trace_file), "host": lat, "guest": guest, "interrupts": interrupts}


# ---- inflate / deflate throughput -------------------------------------------------

def throughput(paths: Dict[str, BootPath], workdir: Path, memory: str, cycles: int) -> Dict[str, dict]:
    """Per path, balloon to half of RAM and back, `cycles` times in one guest; each leg
    timed from the QMP `balloon` command to query-balloon's actual reaching the target.
    The guests run side by side, idle but for the leg being timed, which goes to each
    in turn: a change in the machine's load lands on all paths alike."""
    ram = parse_size(memory)
    half = ram // 2
    pages = (ram - half) // PAGE
    vms = {name: BallastVM(workdir / name, memory=memory, **p.vm_kwargs()) for name, p in paths.items()}
    out = {name: {"pages": pages, "inflate_s": [], "deflate_s": []} for name in paths}
    try:
        for vm in vms.values():
            vm.start()
        for vm in vms.values():
            vm.wait_ready(BOOT_TIMEOUT)

        def leg(vm: BallastVM, target: int) -> float:
            qmp = vm.qmp()
            t0 = time.monotonic()
            qmp.cmd("balloon", value=target)
            vm.wait_until(lambda: qmp.cmd("query-balloon")["actual"] == target, 300,
                          f"query-balloon actual == {target}", interval=QMP_POLL_S)
            return time.monotonic() - t0

        for _ in range(cycles):
            for name, vm in vms.items():
                out[name]["inflate_s"].append(leg(vm, half))
                out[name]["deflate_s"].append(leg(vm, ram))
    finally:
        for vm in vms.values():
            vm.kill()
    for r in out.values():
        r["inflate_pages_s"] = [pages / t for t in r["inflate_s"]]
        r["deflate_pages_s"] = [pages / t for t in r["deflate_s"]]
    return out

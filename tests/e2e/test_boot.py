"""Boot, memory map, self-test, exception reporting and console robustness."""

from __future__ import annotations

import re

import pytest

from ballast_qemu import debug_exit_status, parse_kv, parse_size

pytestmark = pytest.mark.host_independent  # the kernel itself; any QEMU boots it alike

BOOT_TIMEOUT = 60  # OVMF alone takes ~3-5 s under TCG; leave room for a loaded CI box
EXIT_TIMEOUT = 60
PAGE = 4096

MEMMAP_TYPES = {"usable", "boot-reclaimable", "kernel", "reserved",
                "acpi-reclaim", "acpi-nvs", "mmio"}
MEMMAP_RE = re.compile(
    r"ballast: memmap base=0x([0-9a-fA-F]+) size=0x([0-9a-fA-F]+) type=(\S+)$", re.M)
SUMMARY_RE = re.compile(
    r"ballast: summary usable_bytes=(\d+) managed_pages=(\d+) free_pages=(\d+) "
    r"allocated_pages=(\d+) boot_ms=(\d+(?:\.\d+)?)$", re.M)
GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

# isa-debug-exit statuses as seen by the host.
EXIT_PASS = debug_exit_status(0)   # 1
EXIT_FAULT = debug_exit_status(2)  # 5


def test_boots_to_ready(ready_vm):
    assert 0 < ready_vm.ready_seconds < BOOT_TIMEOUT
    # The guest is expected to keep running after ready (it is a long-lived test guest).
    assert ready_vm.proc.poll() is None
    status = ready_vm.qmp().cmd("query-status")
    assert (status["status"], status["running"]) == ("running", True)


@pytest.mark.parametrize("memory", ["128M", "1G"])
def test_memory_totals(ballast_vm, memory):
    vm = ballast_vm(memory=memory, cmdline="verbose")  # the memory map is boot detail
    vm.wait_ready(timeout=BOOT_TIMEOUT)
    log = vm.log_text()

    ranges = [(int(b, 16), int(s, 16), t) for b, s, t in MEMMAP_RE.findall(log)]
    assert ranges, "no 'ballast: memmap' lines in the log"
    unknown = sorted({t for _, _, t in ranges} - MEMMAP_TYPES)
    assert not unknown, f"memmap types outside the contract: {unknown}"
    # Overlapping ranges would make any sum over them meaningless.
    spans = sorted((b, b + s) for b, s, _ in ranges)
    for (b0, e0), (b1, e1) in zip(spans, spans[1:]):
        assert e0 <= b1, f"memmap ranges overlap: [{b0:#x},{e0:#x}) and [{b1:#x},{e1:#x})"

    summaries = SUMMARY_RE.findall(log)
    assert len(summaries) == 1, f"expected one summary line, got {summaries}"
    usable_bytes, managed, free, allocated = map(int, summaries[0][:4])

    usable_sum = sum(s for _, s, t in ranges if t in ("usable", "boot-reclaimable"))
    assert usable_sum == usable_bytes
    assert usable_bytes == managed * PAGE
    ram = parse_size(memory)
    assert 0.85 * ram <= managed * PAGE <= ram, (
        f"managed {managed * PAGE} bytes is not within 85%..100% of {ram}")
    assert free + allocated == managed
    assert free > 0

    answer = vm.console("mem show")
    assert answer.startswith("ok "), answer
    kv = parse_kv(answer)
    missing = {"managed", "free", "allocated", "usable"} - kv.keys()
    assert not missing, f"'mem show' answer lacks {missing}: {answer!r}"
    c_managed, c_free, c_alloc, c_usable = (
        int(kv[k]) for k in ("managed", "free", "allocated", "usable"))
    assert c_managed == c_free + c_alloc
    assert c_managed == c_usable
    assert c_managed == managed


def test_selftest_passes(ballast_vm):
    vm = ballast_vm(cmdline="selftest")
    status = vm.wait_exit(timeout=EXIT_TIMEOUT)
    assert status == EXIT_PASS, (
        f"QEMU exit status {status}, want {EXIT_PASS} (guest wrote 0 to isa-debug-exit)")
    assert "ballast: selftest: PASS" in vm.log_text()


@pytest.mark.parametrize("kind, name, vector", [
    ("pf", "#PF", 14),
    ("ud", "#UD", 6),
    ("gp", "#GP", 13),
    ("de", "#DE", 0),
])
def test_provoked_exception(ballast_vm, kind, name, vector):
    vm = ballast_vm(cmdline=f"crash={kind}")
    status = vm.wait_exit(timeout=EXIT_TIMEOUT)
    log = vm.log_text()
    assert status == EXIT_FAULT, (
        f"QEMU exit status {status}, want {EXIT_FAULT} (guest wrote 2 to isa-debug-exit)")

    exc_re = re.compile(
        r"ballast: EXCEPTION (#\w+) vector=(\d+) error=0x[0-9a-fA-F]+ "
        r"rip=0x[0-9a-fA-F]+ cr2=0x([0-9a-fA-F]+)$", re.M)
    found = list(exc_re.finditer(log))
    # More than one would mean the handler itself faulted.
    assert len(found) == 1, (
        f"expected one well-formed EXCEPTION line, got {[m.group(0) for m in found]}; "
        f"lines mentioning EXCEPTION: {[l for l in log.splitlines() if 'EXCEPTION' in l]}")
    m = found[0]
    assert m.group(1) == name
    assert int(m.group(2)) == vector

    after = log[m.end():]
    for reg in GPRS:
        assert re.search(rf"\b{reg}=0x[0-9a-fA-F]+", after), f"{reg} not dumped after the EXCEPTION line"

    if kind == "pf":
        touched = re.findall(r"ballast: crash: touching 0x([0-9a-fA-F]+)$", log, re.M)
        assert len(touched) == 1, f"expected one 'crash: touching' line, got {touched}"
        assert log.index("ballast: crash: touching") < m.start(), "fault reported before the touch"
        assert int(m.group(3), 16) == int(touched[0], 16)


def test_unknown_command_gets_one_error(ready_vm):
    answer = ready_vm.console("frobnicate-the-balloon")
    assert answer == "err unknown command (try help)", answer
    # A second answer line for the bad command would be taken as the answer to this one.
    answer = ready_vm.console("mem show")
    assert answer.startswith("ok "), answer
    assert {"managed", "free", "allocated", "usable"} <= parse_kv(answer).keys()
    errs = [l for l in ready_vm.log_text().splitlines() if l.startswith("err")]
    assert len(errs) == 1, f"expected exactly one err line in the log, got {errs}"
    assert ready_vm.proc.poll() is None

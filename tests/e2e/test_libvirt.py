"""ballast under libvirt, as docs/libvirt.md runs it: the doc's own domain XML (name,
file paths and serial device replaced), a transient TCG domain, `virsh dommemstat`
against the guest's logged stats buffers field by field, `virsh setmem` against the
guest's balloon, and `virsh dommemstat --period` against the guest's answers.

The libvirt daemons are started here when they are not running, and only those are
stopped at the end (libvirt_helpers.LibvirtDaemons). What a libvirt field means and how
it is converted is in libvirt_helpers (GUEST_FIELDS); this file checks it exactly.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Dict, Tuple

import pytest

import stats_model
from hosts import UNSET, detect
from inflate_helpers import at_rest
from libvirt_helpers import (GUEST_FIELDS, HOST_FIELDS, KIB, Domain, LibvirtDaemons,
                             expected_guest_fields)
from stats_exact import StatsGuest

# libvirt runs the system's QEMU (its own <emulator>), whichever host the suite is
# pointed at: its profile is the one that says what dommemstat can show.
pytestmark = pytest.mark.host_independent
LIBVIRT_QEMU = detect("/usr/bin/qemu-system-x86_64")
STAT_NAMES = LIBVIRT_QEMU.stat_names

PAGE = 4096
RAM_KIB = 256 * 1024         # <memory unit='MiB'>256</memory> in the doc's XML
SETMEM_KIB = 192 * 1024      # 64 MiB into the balloon
BOOT_TIMEOUT = 120           # from virsh create; ~1 s PVH, ~6 s OVMF when idle
SNAPSHOT_TIMEOUT = 60        # a quiet moment between two buffers, period 1 s
SETTLE_TIMEOUT = 60
UPDATE_TIMEOUT = 20          # the next buffer at period 1 s, on a loaded machine


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    d = LibvirtDaemons(tmp_path_factory.mktemp("libvirt-daemons"))
    try:
        d.start_missing()
        yield d
    finally:
        d.stop_started()


@pytest.fixture(scope="module")
def pvh(daemons, tmp_path_factory):
    """The doc's direct-kernel-boot domain, booted once for this module's tests; each
    test leaves it as it found it (stats normal, period 1, balloon empty)."""
    dom = Domain("ballast-pvh", tmp_path_factory.mktemp("pvh"))
    try:
        dom.create()
        dom.wait_ready(BOOT_TIMEOUT)
        yield dom, StatsGuest(dom)
    finally:
        dom.destroy()


@contextmanager
def logs_on_failure(dom: Domain):
    """A failure anywhere in the block carries the serial log and libvirt's domain
    log (the waits add them themselves; plain asserts do not)."""
    try:
        yield
    except AssertionError as e:
        if "--- serial log tail" in str(e):
            raise
        raise AssertionError(f"{e}\n{dom.diagnostics()}") from e


def paired(dom: Domain, guest: StatsGuest, after_seq: int) -> Tuple[int, Dict[str, int], Dict[str, int]]:
    """(seq, dommemstat, mem show) where dommemstat shows guest buffer `seq` (> after_seq).

    The guest logs and adds each buffer, and answers `stats show`, with interrupts off;
    under TCG QEMU takes a buffer before the guest's notify returns. So if `stats show`
    says seq=n both before and after the virsh call, QEMU held buffer n throughout.
    `mem show` inside the same bracket describes the balloon at that moment."""
    guest.wait_show(lambda s: s["seq"] > after_seq, UPDATE_TIMEOUT, f"a stats buffer after seq={after_seq}")
    tries = []

    def attempt():
        before = guest.show()["seq"]
        stats = dom.dommemstat()
        mem = guest.mem()
        after = guest.show()["seq"]
        tries.append((before, after))
        return (before, stats, mem) if before == after else None
    try:
        return dom.wait_until(attempt, SNAPSHOT_TIMEOUT, "dommemstat between two stats buffers")
    except AssertionError as e:
        raise AssertionError(f"seq before and after each try: {tries}\n{e}") from None


def check_dommemstat(dom: Domain, guest: StatsGuest, seq: int, got: Dict[str, int],
                     mem: Dict[str, int], t_start: float) -> Dict[str, int]:
    """Every field dommemstat printed, accounted for: the guest's ten exactly as
    libvirt converts its line for `seq`, and the three host figures. Returns the
    guest fields expected."""
    line = LIBVIRT_QEMU.shows(guest.line(seq))
    want = expected_guest_fields(line)
    unknown = set(got) - set(GUEST_FIELDS) - set(HOST_FIELDS)
    assert not unknown, f"dommemstat printed fields this test does not know: {sorted(unknown)}"
    assert set(got) == set(want) | set(HOST_FIELDS), (
        f"fields printed {sorted(got)}, expected {sorted(set(want) | set(HOST_FIELDS))} "
        f"(guest line seq={seq}: {line})")
    diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not diff, f"dommemstat vs guest line seq={seq} (got, want): {diff}\nline: {line}"
    # actual: the balloon as the guest holds it (at rest, every page it was asked for).
    assert at_rest(mem), f"balloon moving while stats were compared: {mem}"
    assert got["actual"] == RAM_KIB - mem["balloon_pages"] * PAGE // KIB, (
        f"actual {got['actual']} KiB, guest balloon holds {mem['balloon_pages']} pages of {RAM_KIB} KiB")
    # last_update: the host's clock (seconds) when QEMU took the buffer: after the
    # domain was created, not in the future.
    now = time.time()
    assert int(t_start) <= got["last_update"] <= now, (
        f"last_update {got['last_update']} not within [{int(t_start)}, {now:.0f}]")
    # rss: QEMU's resident set on the host, nothing of the guest's; present and sane.
    assert 0 < got["rss"] < 4 * RAM_KIB, f"rss {got['rss']} KiB"
    return want


def test_dommemstat_is_the_guest_buffer(pvh, request):
    dom, guest = pvh
    # Lands in --junitxml output, like conftest's ballast_ready_s.
    request.node.user_properties.append(("libvirt_pvh_ready_s", round(dom.ready_seconds, 3)))
    t_start = time.time() - dom.ready_seconds
    with logs_on_failure(dom):
        # The doc's <stats period='1'/> reached the domain; the waits below count on it.
        assert "<stats period='1'/>" in dom.virsh("dumpxml", dom.name)
        # Counters that are not zero, so a field read from the wrong stat shows.
        guest.ok("mem touch 1M")
        guest.ok("mem huge 2")
        guest.ok("cache grow 1M")
        seq, got, mem = paired(dom, guest, guest.show()["seq"])
        want = check_dommemstat(dom, guest, seq, got, mem, t_start)
        # ... and the guest's line is its memory manager's counters (docs/libvirt.md's table).
        assert guest.line(seq) == stats_model.sent(stats_model.PLAIN, mem), f"line seq={seq} vs mem show: {mem}"
        assert want["minor_fault"] >= 256 and want["hugetlb_pgalloc"] == 2 and want["disk_caches"] == 1024, (
            f"the guest's activity is not in its stats: {want}")
        assert got["actual"] == RAM_KIB

        # Every stat a different value; memory ones not multiples of 1 KiB (libvirt
        # truncates), the largest values, and one unset (libvirt leaves it out).
        overrides = {
            "stat-swap-in": 3 * KIB + 1023, "stat-swap-out": 5 * KIB + 1, "stat-major-faults": 7,
            "stat-minor-faults": 11, "stat-free-memory": 13 * KIB + 512, "stat-total-memory": 2**64 - 2,
            "stat-available-memory": UNSET, "stat-disk-caches": 1023, "stat-htlb-pgalloc": 2**63,
            "stat-htlb-pgfail": 0,
        }
        assert set(overrides) == set(STAT_NAMES)  # every stat libvirt's QEMU shows
        try:
            for name, value in overrides.items():
                guest.ok(f"stats set {name} {value}")
            # overrides apply from the next answer on
            seq, got, mem = paired(dom, guest, guest.show()["seq"])
            assert LIBVIRT_QEMU.shows(guest.line(seq)) == overrides, f"guest line seq={seq} is not the overrides"
            check_dommemstat(dom, guest, seq, got, mem, t_start)
            # The same, spelled out, so that a wrong model in GUEST_FIELDS shows too.
            assert {k: v for k, v in got.items() if k not in HOST_FIELDS} == {
                "swap_in": 3, "swap_out": 5, "major_fault": 7, "minor_fault": 11, "unused": 13,
                "available": 18014398509481983, "disk_caches": 0, "hugetlb_pgalloc": 2**63,
                "hugetlb_pgfail": 0}, f"dommemstat: {got}"
        finally:
            guest.mode("stats normal")


def test_setmem_moves_the_balloon(pvh):
    dom, guest = pvh
    t_start = time.time() - dom.ready_seconds
    with logs_on_failure(dom):
        for kib in (SETMEM_KIB, RAM_KIB):  # inflate by 64 MiB, then deflate back to full
            dom.virsh("setmem", dom.name, str(kib))  # KiB, virsh's default unit
            pages = (RAM_KIB - kib) * KIB // PAGE
            seen = {}

            def settled() -> bool:
                seen["mem"] = m = guest.mem()
                seen["actual"] = dom.dommemstat()["actual"]
                return (at_rest(m) and m["balloon_target"] == pages and m["balloon_pages"] == pages
                        and m["offline"] == pages and seen["actual"] == kib)
            try:
                dom.wait_until(settled, SETTLE_TIMEOUT, f"balloon at {pages} pages and dommemstat actual {kib} KiB")
            except AssertionError as e:
                raise AssertionError(f"last seen: {seen}\n{e}") from None
            # The guest's stats follow: total memory no longer counts the balloon.
            seq, got, mem = paired(dom, guest, guest.show()["seq"])
            check_dommemstat(dom, guest, seq, got, mem, t_start)
            assert got["available"] == mem["managed"] * PAGE // KIB
            assert mem["managed"] + pages == mem["usable"]


def test_dommemstat_period(pvh):
    """--period 0 stops the host's requests and keeps the last buffer readable,
    --period 1 starts them again; the live XML follows."""
    dom, guest = pvh
    t_start = time.time() - dom.ready_seconds
    with logs_on_failure(dom):
        try:
            # Right after an answer, so that no request is on its way when polling stops.
            seq = guest.show()["seq"]
            guest.wait_show(lambda s: s["seq"] > seq, UPDATE_TIMEOUT, f"an answer after seq={seq}")
            dom.virsh("dommemstat", dom.name, "--period", "0", "--live")
            off = guest.show()["seq"]
            assert "<stats " not in dom.virsh("dumpxml", dom.name)
            # The one fixed window: it checks that something does not happen. Three
            # and a half of the old periods; one answer is allowed, to a request sent
            # before the virsh call on a machine too loaded to answer it at once.
            deadline = time.monotonic() + 3.5
            while time.monotonic() < deadline:
                now = guest.show()["seq"]
                assert now <= off + 1, f"stats went on after --period 0: seq {off} -> {now}"
                time.sleep(0.1)
            # The last buffer stays readable, exactly.
            seq, got, mem = paired(dom, guest, guest.show()["seq"] - 1)
            check_dommemstat(dom, guest, seq, got, mem, t_start)
        finally:
            dom.virsh("dommemstat", dom.name, "--period", "1", "--live")
        assert "<stats period='1'/>" in dom.virsh("dumpxml", dom.name)
        guest.wait_show(lambda s: s["seq"] >= seq + 2, UPDATE_TIMEOUT, "answers again at period 1")


def test_efi_boot_with_cmdline_from_the_esp(daemons, tmp_path, request):
    """The doc's UEFI domain: OVMF boots BOOTX64.EFI from the ESP directory (a
    read-only virtio disk), ballast reads \\ballast.cmdline from it, and libvirt leaves
    out the stats that persona does not send."""
    dom = Domain("ballast-efi", tmp_path, cmdline="persona=windows")
    try:
        dom.create()
        request.node.user_properties.append(("libvirt_efi_ready_s", round(dom.wait_ready(BOOT_TIMEOUT), 3)))
        t_start = time.time() - dom.ready_seconds
        guest = StatsGuest(dom)
        with logs_on_failure(dom):
            assert "ballast: booting (efi front end) version=" in dom.log_text()
            assert " cmdline='persona=windows'\n" in dom.log_text()
            assert guest.show()["persona"] == "windows"
            # seq 1 is the persona's priming buffer (all 0xff): nothing set
            seq, got, mem = paired(dom, guest, 1)
            check_dommemstat(dom, guest, seq, got, mem, t_start)
            # Windows' kernel stats: tags 0-5 only (docs/personas.md)
            assert sorted(set(got) - set(HOST_FIELDS)) == sorted(
                ["swap_in", "swap_out", "major_fault", "minor_fault", "unused", "available"]), got
            assert got["actual"] == RAM_KIB
    finally:
        dom.destroy()

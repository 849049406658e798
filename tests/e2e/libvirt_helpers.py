"""ballast under libvirt (docs/libvirt.md): the daemons, a transient domain built from
the doc's own XML, its serial console, and `virsh dommemstat` read back field by field.

Facts this relies on, observed with libvirt 9.0 and QEMU 7.2 on Debian 12:
- `virsh dommemstat` asks QEMU each time: `actual` is query-balloon's actual, the ten
  guest stats are qom-get guest-stats of /machine/peripheral/balloon0 (libvirt names the
  balloon `balloon0` too), `last_update` is guest-stats' last-update, `rss` is the QEMU
  process's resident set from /proc. Memory figures are KiB (bytes // 1024), counts are
  as QEMU has them, and a stat QEMU shows unset (2**64 - 1) is left out.
- `<stats period='N'/>` and `virsh dommemstat --period N` set
  guest-stats-polling-interval.
- libvirtd caches QEMU's capabilities and checks the cache each time it needs it. It
  probes as root, where QEMU can open /dev/kvm, but checks whether KVM is usable as
  the user QEMU runs as (libvirt-qemu). Where /dev/kvm is root-only (no udev: this
  container, and CI on the same kind of machine) the two never agree, so every check
  re-probes (~4 s; 14 times for one `virsh create`, which then takes a minute). The
  libvirtd started here therefore runs QEMU as root (LibvirtDaemons.QEMU_CONF), which
  makes them agree.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Dict, List, Optional, TypeVar

from ballast_qemu import REPO_ROOT, Console, GuestError, build_dir, wait_until
from balloon_stats import UNSET

T = TypeVar("T")

VIRSH = os.environ.get("BALLAST_VIRSH", "virsh")
URI = "qemu:///system"  # explicit: LIBVIRT_DEFAULT_URI must not send us elsewhere
DOC = REPO_ROOT / "docs" / "libvirt.md"
RUN_DIR = Path("/run/libvirt")
DOMAIN_LOG_DIR = Path("/var/log/libvirt/qemu")
KIB = 1024

# dommemstat field -> (QEMU guest-stats name, divisor), as libvirt 9.0 converts them.
GUEST_FIELDS = {
    "swap_in": ("stat-swap-in", KIB),
    "swap_out": ("stat-swap-out", KIB),
    "major_fault": ("stat-major-faults", 1),
    "minor_fault": ("stat-minor-faults", 1),
    "unused": ("stat-free-memory", KIB),
    "available": ("stat-total-memory", KIB),
    "usable": ("stat-available-memory", KIB),
    "disk_caches": ("stat-disk-caches", KIB),
    "hugetlb_pgalloc": ("stat-htlb-pgalloc", 1),
    "hugetlb_pgfail": ("stat-htlb-pgfail", 1),
}
# Fields that are host figures, not the guest's: checked against the balloon state
# (actual), the host clock (last_update) and for presence (rss).
HOST_FIELDS = ("actual", "last_update", "rss")


def expected_guest_fields(line: Dict[str, int]) -> Dict[str, int]:
    """What dommemstat prints for a guest stats line (QEMU names -> values)."""
    return {field: line[name] // div for field, (name, div) in GUEST_FIELDS.items()
            if line[name] != UNSET}


def parse_dommemstat(text: str) -> Dict[str, int]:
    """`name value` lines; anything else fails, so does a name printed twice."""
    got: Dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r"(\w+) (\d+)", line.strip())
        assert m, f"dommemstat line {line!r} is not 'name value'"
        assert m.group(1) not in got, f"dommemstat printed {m.group(1)} twice:\n{text}"
        got[m.group(1)] = int(m.group(2))
    return got


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_bytes().decode("utf-8", "replace").replace("\r", "")
    except OSError as e:
        return f"<{path}: {e.strerror}>"
    return "\n".join(text.splitlines()[-lines:])


# ---- the daemons ----------------------------------------------------------------------


def _answers(sock: Path) -> bool:
    """Whether a daemon accepts connections on that unix socket (a stale socket file
    left by a killed daemon refuses them)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(str(sock))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _alive(pid: int) -> bool:
    """Running and not a zombie (a daemon is reparented; its reaper may be slow)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class LibvirtDaemons:
    """virtlogd and libvirtd of qemu:///system: the ones already running are used as
    they are; the missing ones are started here and stopped by stop_started(), and
    only those (by the pid each wrote)."""

    # QEMU as root: see the module docstring. Only this file's settings apply, so the
    # daemon does not depend on local edits of the system qemu.conf.
    QEMU_CONF = 'user = "root"\ngroup = "root"\n'
    START_TIMEOUT = 60
    STOP_TIMEOUT = 30

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.started: List[tuple] = []  # (name, pid)

    def start_missing(self) -> None:
        for tool in ("virsh", "virtlogd", "libvirtd"):
            assert shutil.which(tool), (
                f"{tool} not found: install libvirt-daemon-system and libvirt-clients "
                "(Makefile.qemu deps and .ci/run do)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not _answers(RUN_DIR / "virtlogd-sock"):
            self._start("virtlogd", ["virtlogd", "-d", "-f", self._conf("virtlogd")],
                        RUN_DIR / "virtlogd-sock", Path("/run/virtlogd.pid"))
        if not _answers(RUN_DIR / "libvirt-sock"):
            argv = ["libvirtd", "-d", "-f", self._conf("libvirtd")]
            qemu_conf = self.workdir / "qemu.conf"
            qemu_conf.write_text(self.QEMU_CONF)
            # Our own qemu.conf, seen by this libvirtd alone: a private mount namespace
            # in which it is bind-mounted over the system one (nothing on disk changes).
            if subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                              capture_output=True).returncode == 0:
                argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                        'mount --bind "$0" /etc/libvirt/qemu.conf && exec "$@"', str(qemu_conf), *argv]
            else:
                warnings.warn("no private mount namespace (unshare failed): libvirtd runs with the "
                              "system qemu.conf; where /dev/kvm is root-only each domain start takes "
                              "about a minute (docs/libvirt.md)")
            self._start("libvirtd", argv, RUN_DIR / "libvirt-sock", Path("/run/libvirtd.pid"))

    def _conf(self, name: str) -> str:
        """A config whose one setting is a log file in our work directory (warnings and
        errors; daemonized, they would otherwise go to a syslog that is not there)."""
        path = self.workdir / f"{name}.conf"
        path.write_text(f'log_outputs = "3:file:{self.workdir / (name + ".log")}"\n')
        return str(path)

    def _start(self, name: str, argv: List[str], sock: Path, pidfile: Path) -> None:
        out = self.workdir / f"{name}.start.log"
        with open(out, "wb") as f:
            # -d: the daemon forks, the command returns once it is up or has failed.
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                timeout=self.START_TIMEOUT).returncode
        assert rc == 0, f"{' '.join(argv)} exited {rc}:\n{tail(out)}\n{tail(self.workdir / (name + '.log'))}"
        # the pid first: a daemon that forked and then never answers is still ours to stop
        pid = int(pidfile.read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        assert comm == name, f"{pidfile} names pid {pid}, which is {comm!r}, not {name}"
        self.started.append((name, pid))
        try:
            wait_until(lambda: _answers(sock), self.START_TIMEOUT, f"{name} to accept on {sock}", 0.05)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{tail(self.workdir / (name + '.log'))}") from None

    def stop_started(self) -> None:
        """SIGTERM each daemon we started (libvirtd first: it talks to virtlogd) and
        wait for it to go; SIGKILL if it will not."""
        errors = []
        for name, pid in reversed(self.started):
            try:
                if not _alive(pid) or Path(f"/proc/{pid}/comm").read_text().strip() != name:
                    continue  # gone already; never signal a pid that is now someone else
            except OSError:
                continue
            os.kill(pid, signal.SIGTERM)
            try:
                wait_until(lambda: not _alive(pid), self.STOP_TIMEOUT, f"{name} {pid} to exit", 0.05)
            except TimeoutError as e:
                errors.append(str(e))
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not _alive(pid), 10, f"{name} {pid} to die", 0.05)
        self.started = []
        assert not errors, f"daemons that needed SIGKILL: {errors}"


# ---- virsh ----------------------------------------------------------------------------


def virsh(*args: str, timeout: float = 60, check: bool = True,
          context: Callable[[], str] = lambda: "") -> subprocess.CompletedProcess:
    argv = [VIRSH, "-c", URI, *args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{' '.join(argv)}: no answer within {timeout}s\n{context()}") from None
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}\n{context()}")
    return r


# ---- the doc's domain XML -------------------------------------------------------------


def doc_domain_xml(name: str) -> ET.Element:
    """The ```xml block of docs/libvirt.md that defines domain `name`."""
    blocks = re.findall(r"```xml\n(.*?)```", DOC.read_text(), re.S)
    found = [b for b in blocks if re.search(rf"<name>{re.escape(name)}</name>", b)]
    assert len(found) == 1, f"{DOC} has {len(found)} xml blocks for <name>{name}</name>"
    return ET.fromstring(found[0])


def _one(parent: ET.Element, path: str) -> ET.Element:
    found = parent.findall(path)
    assert len(found) == 1, f"the doc's domain XML has {len(found)} <{path}>, expected one"
    return found[0]


class Domain:
    """One transient domain made from the doc's XML with its name, file paths and
    serial device replaced. Quacks like ballast_qemu.BallastVM where StatsGuest needs
    it (console, console_transcript, log_text, wait_until)."""

    _count = 0

    def __init__(self, doc_name: str, workdir: Path, *, cmdline: Optional[str] = None,
                 console_eol: str = "\r"):
        root = doc_domain_xml(doc_name)  # first: a bad doc leaves nothing behind
        Domain._count += 1
        self.name = f"ballast-test-{os.getpid()}-{Domain._count}-{int(time.time())}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.serial_log = self.workdir / "serial.log"
        self.domain_log = DOMAIN_LOG_DIR / f"{self.name}.log"
        # Files QEMU opens: a libvirtd already running may run it as libvirt-qemu,
        # which cannot enter pytest's 0700 tmp directories.
        self.files = Path(tempfile.mkdtemp(prefix="ballast-libvirt-"))
        os.chmod(self.files, 0o755)
        self.console_eol = console_eol
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._console: Optional[Console] = None
        self.created = False
        self.t_create: Optional[float] = None
        self.ready_seconds: Optional[float] = None
        try:
            self.xml = self._build(root, cmdline)
        except BaseException:
            self.destroy()  # the listener and the copied files go, whatever failed
            raise

    def _build(self, root: ET.Element, cmdline: Optional[str]) -> str:
        _one(root, "name").text = self.name
        os_el = _one(root, "os")
        if os_el.find("kernel") is not None:
            kernel = self.files / "ballast.elf"
            shutil.copyfile(build_dir() / "ballast.elf", kernel)
            _one(os_el, "kernel").text = str(kernel)
            _one(os_el, "cmdline").text = cmdline or ""
        else:
            esp = self.files / "esp"
            (esp / "EFI" / "BOOT").mkdir(parents=True)
            shutil.copyfile(build_dir() / "ballast.efi", esp / "EFI" / "BOOT" / "BOOTX64.EFI")
            if cmdline is not None:
                (esp / "ballast.cmdline").write_text(cmdline + "\n")
            _one(root, "devices/disk[@type='dir']/source").set("dir", str(esp))
            _one(os_el, "nvram").text = str(self.files / "VARS.fd")  # from the doc's template
        devices = _one(root, "devices")
        for old in devices.findall("serial") + devices.findall("console"):
            devices.remove(old)
        # TCP, not a unix socket, for the reason ballast_qemu.BallastVM.qemu_argv gives.
        port = self._listener.getsockname()[1]
        serial = ET.SubElement(devices, "serial", type="tcp")
        ET.SubElement(serial, "source", mode="connect", host="127.0.0.1", service=str(port))
        ET.SubElement(serial, "protocol", type="raw")
        ET.SubElement(serial, "log", file=str(self.serial_log), append="off")
        ET.SubElement(serial, "target", type="isa-serial", port="0")
        return ET.tostring(root, encoding="unicode")

    # ---- lifecycle --------------------------------------------------------------------

    def create(self, timeout: float = 300) -> None:
        """virsh create, then take QEMU's serial connection. The generous timeout
        covers a libvirtd that re-probes QEMU (see the module docstring)."""
        xml_file = self.workdir / "domain.xml"
        xml_file.write_text(self.xml)
        self.t_create = time.monotonic()
        self.created = True  # even a failed create may leave it running: destroy() checks
        virsh("create", str(xml_file), timeout=timeout, context=self.diagnostics)
        self._listener.settimeout(30)
        try:
            sock, _ = self._listener.accept()
        except socket.timeout:
            raise GuestError(f"QEMU did not connect to the serial socket\n{self.diagnostics()}") from None
        # the chardev connected to us: the socket is connected already
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._console = Console(None, 0, self.console_eol, sock=sock)

    def destroy(self) -> None:
        """Idempotent; the domain is gone afterwards whatever state it was in. Its
        libvirt log is moved into the work directory (kept by pytest) so that
        /var/log/libvirt/qemu does not collect one file per test run."""
        try:
            if self.created:
                r = virsh("destroy", self.name, check=False)
                state = virsh("domstate", self.name, check=False)
                assert state.returncode != 0, (
                    f"{self.name} still exists after virsh destroy ({r.stderr.strip()}): {state.stdout.strip()}")
                self.created = False
                if self.domain_log.exists():
                    kept = self.workdir / "libvirt-domain.log"
                    shutil.move(str(self.domain_log), kept)
                    self.domain_log = kept
        finally:  # the local resources go even if libvirt would not let the domain go
            if self._console is not None:
                self._console.close()
                self._console = None
            self._listener.close()
            shutil.rmtree(self.files, ignore_errors=True)

    def qemu_running(self) -> bool:
        try:
            return _alive(int((RUN_DIR / "qemu" / f"{self.name}.pid").read_text()))
        except (OSError, ValueError):
            return False

    # ---- what StatsGuest needs of a guest ---------------------------------------------

    def console(self, cmd: str, timeout: float = 10.0) -> str:
        assert self._console is not None, "the domain has no console: create() it first"
        try:
            return self._console.command(cmd, timeout)
        except TimeoutError as e:
            raise GuestError(f"{e}\n{self.diagnostics()}") from None

    @property
    def console_transcript(self) -> List[str]:
        return list(self._console.last_transcript) if self._console else []

    def received(self) -> List[str]:
        return list(self._console.received) if self._console else []

    def log_text(self) -> str:
        try:
            return self.serial_log.read_bytes().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str,
                   interval: float = 0.05) -> T:
        """ballast_qemu.wait_until that stops once QEMU is gone and fails with the
        serial log and libvirt's domain log."""
        def check() -> T:
            if not self.qemu_running():
                raise GuestError(f"QEMU is gone while waiting for {what}\n{self.diagnostics()}")
            return predicate()
        try:
            return wait_until(check, timeout, what, interval)
        except TimeoutError as e:
            raise GuestError(f"{e}\n{self.diagnostics()}") from None

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from `virsh create` to `ballast: ready` in the serial log."""
        self.wait_until(lambda: "ballast: ready" in self.log_text(), timeout, "ballast: ready", 0.02)
        self.ready_seconds = time.monotonic() - self.t_create
        return self.ready_seconds

    # ---- virsh on this domain ---------------------------------------------------------

    def virsh(self, *args: str, timeout: float = 60) -> str:
        return virsh(*args, timeout=timeout, context=self.diagnostics).stdout

    def dommemstat(self) -> Dict[str, int]:
        return parse_dommemstat(self.virsh("dommemstat", self.name))

    def diagnostics(self) -> str:
        return (f"--- serial log tail ({self.serial_log}) ---\n{tail(self.serial_log)}\n"
                f"--- libvirt domain log tail ({self.domain_log}) ---\n{tail(self.domain_log, 25)}")

"""Boot ballast under QEMU + OVMF and talk to it (serial log, console socket, QMP).

One BallastVM is one QEMU process with its own work directory: a copy of the OVMF
variable store, an ESP directory, the serial log and the QEMU stderr log. Every wait
polls with a deadline; nothing sleeps for a fixed time hoping the guest got there.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
OVMF_CODE = Path(os.environ.get("BALLAST_OVMF_CODE", "/usr/share/OVMF/OVMF_CODE_4M.fd"))
OVMF_VARS = Path(os.environ.get("BALLAST_OVMF_VARS", "/usr/share/OVMF/OVMF_VARS_4M.fd"))
QEMU = os.environ.get("BALLAST_QEMU", "qemu-system-x86_64")

# KVM on these machines kills guests with "KVM internal error", so TCG is the default
# and KVM is opt-in (BALLAST_ACCEL=kvm) where it is known to work.
DEFAULT_ACCEL = os.environ.get("BALLAST_ACCEL", "tcg")
DEFAULT_DEVICES = ("-device", "virtio-balloon-pci,id=balloon0")
# efi: OVMF and build/ballast.efi (the README's path); pvh: qemu -kernel
# build/ballast.elf, no firmware, ~10x faster under TCG.
DEFAULT_BOOT = os.environ.get("BALLAST_BOOT", "efi")

READY_LINE = re.compile(r"ballast: ready")
POLL_INTERVAL = 0.02  # short enough that the measured ready time is within ~20 ms

# isa-debug-exit turns a guest write of v into QEMU exit status (v << 1) | 1.
def debug_exit_status(guest_value: int) -> int:
    return (guest_value << 1) | 1


def build_dir() -> Path:
    env = os.environ.get("BALLAST_BUILD")
    return Path(env).resolve() if env else REPO_ROOT / "build"


def image_path(boot: str = "efi") -> Path:
    return build_dir() / ("ballast.elf" if boot == "pvh" else "ballast.efi")


def parse_size(size: str) -> int:
    """QEMU -m syntax ("128M", "1G", "512") to bytes; a bare number means MiB."""
    m = re.fullmatch(r"(\d+)([KMGT]?)", size.strip().upper())
    if not m:
        raise ValueError(f"unsupported -m size {size!r}")
    shift = {"": 20, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]
    return int(m.group(1)) << shift


class GuestError(AssertionError):
    """A wait that did not see what it waited for; the message carries the log tail."""


def wait_until(predicate: Callable[[], T], timeout: float, what: str = "condition",
               interval: float = POLL_INTERVAL) -> T:
    """Call predicate until it returns something truthy and return that; TimeoutError
    naming `what` once `timeout` seconds have passed. The predicate may raise to stop
    the wait early (an assertion that can no longer become true)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(interval)


@dataclass(frozen=True)
class IoapicPin:
    """One IOAPIC redirection entry, decoded from its raw value (82093AA 3.2.4)."""
    raw: int

    @property
    def vector(self) -> int:
        return self.raw & 0xff

    @property
    def active_low(self) -> bool:
        return bool(self.raw >> 13 & 1)

    @property
    def level(self) -> bool:
        return bool(self.raw >> 15 & 1)

    @property
    def masked(self) -> bool:
        return bool(self.raw >> 16 & 1)


# "  pin 21 0x000000000000a045 dest=0 vec=69  active-lo level ..." (HMP info pic, ioapic)
_IOAPIC_PIN_RE = re.compile(r"^\s*pin\s+(\d+)\s+0x([0-9a-fA-F]+)\b", re.M)


# Every QEMU we start, so an interpreter exit (e.g. a second Ctrl-C that skips fixture
# teardown) still kills them. PR_SET_PDEATHSIG covers the case where pytest itself is
# SIGKILLed and no Python code runs at all.
_LIVE: "weakref.WeakSet[BallastVM]" = weakref.WeakSet()


@atexit.register
def _kill_all_live() -> None:
    for vm in list(_LIVE):
        vm.kill()


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # best effort; atexit and fixture teardown still apply


class Console:
    """A client on the COM1 socket.

    A reader thread drains the socket all the time: if nobody read it, QEMU's socket
    buffer would fill and the guest's serial writes would stall, changing timing.
    """

    def __init__(self, path, timeout: float, eol: str, sock: Optional[socket.socket] = None):
        """Connects to `path` (a unix socket path or a (host, port) tuple), or takes
        `sock`, already connected (a chardev that connected to the test)."""
        self.eol = eol
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.received: List[str] = []  # every line, in order, for transcripts
        self.last_transcript: List[str] = []  # lines since the previous answer
        if sock is None:
            sock = _connect_tcp(path, timeout) if isinstance(path, tuple) else _connect_unix(path, timeout)
        self._sock = sock
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        while not self._stop:
            try:
                data = self._sock.recv(4096)
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").replace("\r", "")
                self.received.append(text)  # list.append is atomic: readers copy it
                self.lines.put(text)

    def command(self, cmd: str, timeout: float) -> str:
        # Queued lines are not drained: the guest answers each command with exactly one
        # ok/err line, so a stray answer left over from an earlier command must surface
        # here (as this command's answer) instead of being thrown away.
        self.last_transcript = []
        self._sock.sendall((cmd + self.eol).encode())
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"no ok/err answer to {cmd!r} within {timeout}s; "
                    f"console lines seen: {self.last_transcript!r}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            self.last_transcript.append(line)
            if line.startswith("ok") or line.startswith("err"):
                return line

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: hostile input, several lines at once."""
        self._sock.sendall(data)

    def answers(self, count: int, timeout: float) -> List[str]:
        """The next `count` ok/err lines (log lines in between are skipped)."""
        got: List[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(got)} of {count} answers within {timeout}s; last: {got[-3:]!r}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if line.startswith("ok") or line.startswith("err"):
                got.append(line)
        return got

    def close(self) -> None:
        self._stop = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=2)


def _connect_tcp(addr: tuple, timeout: float) -> socket.socket:
    s = socket.create_connection(addr, timeout=timeout)
    s.settimeout(None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _connect_unix(path: str, timeout: float) -> socket.socket:
    # QEMU creates its sockets shortly after exec; retry until it has.
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(POLL_INTERVAL)


class BallastVM:
    def __init__(self, workdir: Path, *, cmdline: Optional[str] = None,
                 memory: str = "128M", machine: str = "q35",
                 accel: Optional[str] = None,
                 devices: Sequence[str] = DEFAULT_DEVICES,
                 extra_args: Sequence[str] = (),
                 image: Optional[Path] = None,
                 boot: str = DEFAULT_BOOT,
                 console_eol: str = "\r",
                 console_unix: bool = False):
        self.workdir = Path(workdir)
        self.cmdline = cmdline
        self.memory = memory
        self.machine = machine
        self.accel = accel or DEFAULT_ACCEL
        self.devices = list(devices)
        self.extra_args = list(extra_args)
        self.boot = boot
        self.image = Path(image) if image else image_path(boot)
        self.console_eol = console_eol
        self.console_unix = console_unix  # the console on a unix socket (console_sock), not TCP
        self.proc: Optional[subprocess.Popen] = None
        self.t_start: Optional[float] = None
        self.ready_seconds: Optional[float] = None  # QEMU start -> "ballast: ready"
        self._console: Optional[Console] = None
        self._qmp = None
        # Unix socket paths are limited to 108 bytes and pytest's tmp_path can be long.
        self.sockdir = Path(tempfile.mkdtemp(prefix="ballast-"))
        self.serial_log = self.workdir / "serial.log"
        self.stderr_log = self.workdir / "qemu.stderr.log"
        self.console_sock = self.sockdir / "console.sock"
        self.qmp_sock = self.sockdir / "qmp.sock"
        self.esp = self.workdir / "esp"

    # ---- start / stop -------------------------------------------------------------

    def _prepare(self) -> None:
        if not self.image.is_file():
            raise FileNotFoundError(
                f"{self.image} does not exist: build ballast first "
                "(or point BALLAST_BUILD at the build directory)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.boot == "pvh":
            return  # qemu -kernel: no firmware, no ESP
        boot = self.esp / "EFI" / "BOOT"
        boot.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.image, boot / "BOOTX64.EFI")
        if self.cmdline is not None:
            (self.esp / "ballast.cmdline").write_text(self.cmdline + "\n")
        # OVMF writes boot entries into its variable store: never share one.
        shutil.copyfile(OVMF_VARS, self.workdir / "OVMF_VARS.fd")

    def boot_argv(self) -> List[str]:
        if self.boot == "pvh":
            return ["-kernel", str(self.image), "-append", self.cmdline or ""]
        return [
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={self.workdir / 'OVMF_VARS.fd'}",
            # No if=: the machine's default disk (AHCI on q35, IDE on pc), which
            # OVMF boots from without extra drivers.
            "-drive", f"format=raw,file=fat:rw:{self.esp}",
        ]

    def qemu_argv(self) -> List[str]:
        return [
            QEMU,
            "-machine", self.machine, "-accel", self.accel, "-m", self.memory,
            "-display", "none", "-nodefaults", "-no-user-config",
            *self.boot_argv(),
            # TCP on loopback, not a unix socket: QEMU's 16550 writes one byte at a
            # time, and on a unix socket each byte costs a whole skb of the send
            # buffer, which then fills after a few hundred bytes; QEMU drops a byte
            # it could not send in 4 tries. TCP packs the bytes together.
            "-chardev", (f"socket,id=con0,path={self.console_sock},server=on,wait=off,logfile={self.serial_log}"
                         if self.console_unix else
                         f"socket,id=con0,host=127.0.0.1,port=0,server=on,wait=off,logfile={self.serial_log}"),
            "-serial", "chardev:con0",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-qmp", f"unix:{self.qmp_sock},server=on,wait=off",
            *self.devices, *self.extra_args,
        ]

    def start(self) -> "BallastVM":
        self._prepare()
        argv = self.qemu_argv()
        (self.workdir / "qemu.argv").write_text(" ".join(argv) + "\n")
        self.serial_log.touch()
        self._stderr = open(self.stderr_log, "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        _LIVE.add(self)
        return self

    def kill(self) -> None:
        """Idempotent; safe from teardown, atexit and after QEMU already exited."""
        if self._console is not None:
            self._console.close()
            self._console = None
        if self._qmp is not None:
            try:
                self._qmp.close()
            except Exception:  # QEMU may already be gone; nothing left to close
                pass
            self._qmp = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
            self._stderr = None
        _LIVE.discard(self)
        shutil.rmtree(self.sockdir, ignore_errors=True)

    # ---- logs -----------------------------------------------------------------------

    def log_text(self) -> str:
        """Serial output so far; CRs dropped so patterns can use $ per line."""
        try:
            return self.serial_log.read_bytes().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def tail(self, path: Optional[Path] = None, lines: int = 60) -> str:
        path = path or self.serial_log
        try:
            text = path.read_bytes().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return f"<{path} missing>"
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, what: str) -> GuestError:
        status = self.proc.poll() if self.proc else None
        return GuestError(
            f"{what} (qemu exit status: {status})\n"
            f"--- serial log tail ({self.serial_log}) ---\n{self.tail()}\n"
            f"--- qemu stderr ---\n{self.tail(self.stderr_log, 20)}")

    def wait_for_log(self, regex: str, timeout: float, flags: int = re.MULTILINE) -> re.Match:
        pattern = re.compile(regex, flags)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            m = pattern.search(self.log_text())  # read after poll(): nothing more comes
            if m:
                return m
            if exited:
                raise self._fail(f"QEMU exited before the log matched {regex!r}")
            if time.monotonic() >= deadline:
                raise self._fail(f"log did not match {regex!r} within {timeout}s")
            time.sleep(POLL_INTERVAL)

    def wait_ready(self, timeout: float = 60.0) -> float:
        self.wait_for_log(READY_LINE.pattern, timeout)
        if self.ready_seconds is None:
            self.ready_seconds = time.monotonic() - self.t_start
        return self.ready_seconds

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str,
                   interval: float = POLL_INTERVAL) -> T:
        """wait_until() that stops as soon as QEMU exits and, on failure, reports the
        serial log and QEMU's stderr like the other waits."""
        def check() -> T:
            if self.proc is not None and self.proc.poll() is not None:
                raise self._fail(f"QEMU exited while waiting for {what}")
            return predicate()
        try:
            return wait_until(check, timeout, what, interval)
        except TimeoutError as e:
            raise self._fail(str(e)) from None

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self._fail(f"QEMU did not exit within {timeout}s") from None

    # ---- console and QMP ------------------------------------------------------------

    def console(self, cmd: str, timeout: float = 10.0) -> str:
        """Send one line; return the first answer line starting with ok or err."""
        if self._console is None:
            self._console = Console(self.console_address(timeout), timeout, self.console_eol)
        try:
            return self._console.command(cmd, timeout)
        except TimeoutError as e:
            raise self._fail(str(e)) from None

    def console_connected(self) -> bool:
        return self._console is not None

    def received(self) -> List[str]:
        """Every line the console socket carried since our client connected (exact,
        unlike the log file, which can double a byte), in order."""
        return list(self._console.received) if self._console else []

    def forget_received(self, keep: int) -> None:
        """Drops all but the last `keep` received lines (a long run's memory)."""
        if self._console:
            del self._console.received[:-keep]

    def console_client(self, timeout: float = 10.0) -> "Console":
        """The console connection itself, for raw input (send_raw, answers)."""
        if self._console is None:
            self._console = Console(self.console_address(timeout), timeout, self.console_eol)
        return self._console

    def release_console(self) -> None:
        """Closes our console connection: a QEMU socket chardev serves one client."""
        if self._console is not None:
            self._console.close()
            self._console = None

    def release_qmp(self) -> None:
        """Closes our QMP connection: QEMU serves one QMP client at a time, and an
        outside tool (ballastctl) needs the socket."""
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None

    def console_address(self, timeout: float = 10.0):
        """(host, port) QEMU picked for the console (port=0), from query-chardev; or
        the unix socket's path."""
        if self.console_unix:
            return str(self.console_sock)
        for c in self.qmp(timeout).cmd("query-chardev"):
            if c["label"] == "con0":
                m = re.search(r"tcp:([0-9.]+):(\d+)", c["filename"])
                if m:
                    return (m.group(1), int(m.group(2)))
        raise self._fail("no TCP address for the console chardev in query-chardev")

    @property
    def console_transcript(self) -> List[str]:
        return list(self._console.last_transcript) if self._console else []

    def qmp(self, timeout: float = 10.0):
        """A connected qemu.qmp.legacy.QEMUMonitorProtocol (sync), made on first use."""
        if self._qmp is None:
            from qemu.qmp.legacy import QEMUMonitorProtocol
            deadline = time.monotonic() + timeout
            while not self.qmp_sock.exists():
                if time.monotonic() >= deadline:
                    raise self._fail(f"no QMP socket within {timeout}s")
                time.sleep(POLL_INTERVAL)
            qmp = QEMUMonitorProtocol(str(self.qmp_sock))
            qmp.connect()
            qmp.settimeout(timeout)
            self._qmp = qmp
        return self._qmp

    def hmp(self, command: str) -> str:
        """One human-monitor command through QMP; its text output."""
        return self.qmp().cmd("human-monitor-command", **{"command-line": command})

    def ioapic_pins(self) -> Dict[int, IoapicPin]:
        """The IOAPIC's redirection table as QEMU holds it (HMP `info pic`)."""
        text = self.hmp("info pic")
        pins = {int(m.group(1)): IoapicPin(int(m.group(2), 16)) for m in _IOAPIC_PIN_RE.finditer(text)}
        if not pins:
            raise AssertionError(f"no IOAPIC pins in 'info pic' output:\n{text}")
        return pins

    def pci_device(self, qdev_id: str) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """The query-pci entry of the device with that id, and the bridges above it
        (outermost first), as QEMU placed them."""
        def walk(devices, above):
            for d in devices:
                if d.get("qdev_id") == qdev_id:
                    return d, above
                bridge = d.get("pci_bridge")
                if bridge:
                    found = walk(bridge.get("devices", []), above + [d])
                    if found:
                        return found
            return None
        for bus in self.qmp().cmd("query-pci"):
            found = walk(bus["devices"], [])
            if found:
                return found
        raise AssertionError(f"query-pci lists no device with id {qdev_id!r}")


def parse_kv(line: str) -> Dict[str, str]:
    """"ok managed=1 free=2" -> {"managed": "1", "free": "2"}; bare words are ignored."""
    return dict(tok.split("=", 1) for tok in line.split()[1:] if "=" in tok)

"""tools/ballastctl against a running guest: every subcommand, its output compared
with what QMP and the guest's console say."""

import re
import subprocess
import sys

import pytest

from ballast_qemu import REPO_ROOT, parse_kv
from balloon_stats import Balloon, STAT_NAMES, answer_match
from mem_show import parse_mem_show

CTL = [sys.executable, str(REPO_ROOT / "tools" / "ballastctl")]
pytestmark = pytest.mark.host_independent  # a host tool: it reads what any host shows


def ctl(vm, *args, console=None) -> str:
    vm.release_qmp()  # one QMP client at a time
    argv = CTL + ["--qmp", str(vm.qmp_sock)]
    if console:
        argv += ["--console", console]
    out = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_ballastctl(ballast_vm):
    vm = ballast_vm(boot="pvh", memory="256M")
    vm.wait_ready(timeout=30)
    host, port = vm.console_address()

    assert ctl(vm, "interval", "1").strip() == "/machine/peripheral/balloon0 guest-stats-polling-interval = 1"
    balloon = Balloon(vm)
    update = balloon.wait_update(balloon.stats()["last-update"], 30)
    balloon.wait_update(update.last_update, 30)
    assert vm.console("stats pause") == "ok paused=1"  # hold the values still while ballastctl reads them
    vm.wait_until(lambda: parse_kv(vm.console("stats show"))["held"] == "1", 10, "the guest to hold")
    gs = balloon.stats()

    table = ctl(vm, "stats")
    assert f"last-update {gs['last-update']}" in table
    for name in STAT_NAMES:
        assert re.search(rf"^{name}\s+{gs['stats'][name]}$", table, re.M), (name, table)

    watched = ctl(vm, "watch", "--interval", "0.1", "--count", "1", "--serial-log", str(vm.serial_log))
    assert "differs" not in watched
    for name in STAT_NAMES:
        v = gs["stats"][name]
        assert re.search(rf"^{name}\s+{v}\s+{v}$", watched, re.M), (name, watched)

    vm.release_console()  # one console client at a time
    answer = ctl(vm, "console", "mem show", console=f"{host}:{port}").strip()
    # the guest is paused and at rest: the same answer, counter for counter
    assert parse_mem_show(answer) == parse_mem_show(vm.console("mem show"))

    answer_match(vm.console("stats resume"), r"ok paused=0 answered_held=1")
    ctl(vm, "target", "192M")
    qmp = vm.qmp()
    vm.wait_until(lambda: qmp.cmd("query-balloon")["actual"] == 192 << 20, 30, "the balloon at 192M")
    # ... and the guest holds exactly the 64 MiB the host took
    vm.wait_until(lambda: parse_mem_show(vm.console("mem show"))["balloon_pages"] == (64 << 20) // 4096, 10,
                  "the guest's balloon at 64 MiB")

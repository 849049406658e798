"""pytest glue for the ballast end-to-end tests.

`ballast_vm` is a factory: `vm = ballast_vm(cmdline="selftest", memory="1G")` boots a
guest (started, not yet waited for). Every guest a test starts is killed at teardown,
whatever the outcome, and a failing test's report gets each guest's serial log tail.

`shared_ballast_vm` is the same factory for a guest that the tests of one class share
(one boot instead of one per test); it is killed when the class is done, and a failing
test's report gets its log too.
"""

from __future__ import annotations

import pytest

from ballast_qemu import BallastVM, build_dir, image_path
from boot_paths import RING_PATHS, BootPath
from hosts import HOST, Host

_VMS = pytest.StashKey[list]()
_SHARED_VMS = pytest.StashKey[list]()


def kill_all(vms: list) -> None:
    """Kill every VM even if killing one fails; then raise the first failure."""
    errors = []
    for vm in vms:
        try:
            vm.kill()
        except Exception as e:  # noqa: BLE001 - re-raised below, after the others
            errors.append(e)
    if errors:
        raise errors[0]


def _starter(vms: list, workdir_for):
    def start(**kwargs) -> BallastVM:
        vm = BallastVM(workdir_for(len(vms)), **kwargs)
        vms.append(vm)
        try:
            vm.start()
        except FileNotFoundError as e:
            # A missing image is an error, not a skip: a suite that skips every test
            # would let CI go green without booting anything.
            pytest.fail(str(e), pytrace=False)
        return vm
    return start


@pytest.fixture
def ballast_vm(request, tmp_path):
    vms = request.node.stash.setdefault(_VMS, [])
    start = _starter(vms, lambda i: tmp_path / f"vm{i}")
    try:
        yield start
    finally:
        kill_all(vms)
        for vm in vms:
            if vm.ready_seconds is not None:
                # Lands in --junitxml output, where the benchmarks pick it up.
                request.node.user_properties.append(("ballast_ready_s", round(vm.ready_seconds, 3)))


@pytest.fixture(scope="class")
def shared_ballast_vm(request, tmp_path_factory):
    vms = request.node.stash.setdefault(_SHARED_VMS, [])
    base = tmp_path_factory.mktemp(request.node.name)
    start = _starter(vms, lambda i: base / f"vm{i}")
    try:
        yield start
    finally:
        kill_all(vms)


@pytest.fixture(params=list(RING_PATHS))
def boot_path(request) -> BootPath:
    """Runs the test once on each boot path (boot_paths.py): efi-q35, pvh-q35, pvh-pc,
    pvh-microvm, and pvh-q35, pvh-pc and pvh-microvm (modern virtio-mmio) with packed rings."""
    return RING_PATHS[request.param]


@pytest.fixture
def ready_vm(ballast_vm):
    """A guest booted with the default configuration and past its ready line."""
    vm = ballast_vm()
    vm.wait_ready(timeout=60)
    return vm


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    named = [(f"vm{i}", vm) for i, vm in enumerate(item.stash.get(_VMS, []))]
    for node in item.listchain():  # the class (or module) whose guest this test shared
        named += [(f"shared {node.name} vm{i}", vm) for i, vm in enumerate(node.stash.get(_SHARED_VMS, []))]
    for name, vm in named:
        rep.sections.append((f"ballast {name} qemu command line", " ".join(vm.qemu_argv())))
        rep.sections.append((f"ballast {name} serial log tail ({vm.serial_log})", vm.tail()))
        rep.sections.append((f"ballast {name} qemu stderr", vm.tail(vm.stderr_log, 20)))


def pytest_report_header(config):
    return [f"ballast image: {image_path()}",
            f"host: {HOST.name} ({' '.join(map(str, HOST.version))}, {HOST.profile.name}'s facts)"]


@pytest.fixture(scope="session")
def host() -> Host:
    """The host under test and its profile (hosts.py)."""
    return HOST


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    HOST.where = item.nodeid


def pytest_terminal_summary(terminalreporter):
    """On a host without a profile: what it did differently from the nearest one."""
    if HOST.known:
        return
    path = build_dir() / "host-deviations.md"
    rows = [f"| {d.behaviour} | `{d.got!r}` | `{d.want!r}` | {d.where} |" for d in HOST.deviations]
    text = (f"# {HOST.name}: differences from {HOST.profile.name}\n\n"
            f"{len(rows)} host-behaviour checks differed (recorded, not failed).\n\n"
            "| behaviour | this host | " + HOST.profile.name + " | test |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
    path.write_text(text)
    terminalreporter.section(f"host report: {HOST.name}")
    terminalreporter.write_line(f"{len(rows)} host-behaviour differences from {HOST.profile.name}; see {path}")
    for r in rows[:40]:
        terminalreporter.write_line(r)

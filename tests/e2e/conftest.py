"""pytest glue for the ballast end-to-end tests.

`ballast_vm` is a factory: `vm = ballast_vm(cmdline="selftest", memory="1G")` boots a
guest (started, not yet waited for). Every guest a test starts is killed at teardown,
whatever the outcome, and a failing test's report gets each guest's serial log tail.
"""

from __future__ import annotations

import pytest

from ballast_qemu import BallastVM, image_path

_VMS = pytest.StashKey[list]()


@pytest.fixture
def ballast_vm(request, tmp_path):
    vms = request.node.stash.setdefault(_VMS, [])

    def start(**kwargs) -> BallastVM:
        workdir = tmp_path / f"vm{len(vms)}"
        vm = BallastVM(workdir, **kwargs)
        vms.append(vm)
        try:
            vm.start()
        except FileNotFoundError as e:
            # A missing image is an error, not a skip: a suite that skips every test
            # would let CI go green without booting anything.
            pytest.fail(str(e), pytrace=False)
        return vm

    try:
        yield start
    finally:
        for vm in vms:
            vm.kill()
            if vm.ready_seconds is not None:
                # Lands in --junitxml output, where the benchmarks pick it up.
                request.node.user_properties.append(("ballast_ready_s", round(vm.ready_seconds, 3)))


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
    for i, vm in enumerate(item.stash.get(_VMS, [])):
        rep.sections.append((f"ballast vm{i} qemu command line", " ".join(vm.qemu_argv())))
        rep.sections.append((f"ballast vm{i} serial log tail ({vm.serial_log})", vm.tail()))
        rep.sections.append((f"ballast vm{i} qemu stderr", vm.tail(vm.stderr_log, 20)))


def pytest_report_header(config):
    return f"ballast image: {image_path()}"

"""How the balloon's interrupts arrive, on each host: MSI-X with QEMU 10.0's default two
vectors (config changes on one, the queues on the other), with a vector for config and
each queue (vectors=4 for the three queues), with one vector (config and queues share
it), with none (INTx), and INTx on QEMU 7.2, whose balloon has no MSI-X.

For each: the guest's up line says which it uses, the `irq` console command counts
interrupts per vector, and the counts are the events: every stats request is one
queue interrupt, every balloon target one config interrupt; stats and a balloon target
work exactly on each.
"""

from __future__ import annotations

import re
from typing import Dict, Optional

import pytest

from ballast_qemu import BallastVM
from balloon_stats import Balloon, up_line
from boot_paths import BOOT_PATHS
from hosts import HOST
from inflate_helpers import Host, settled

BOOT_TIMEOUT = 60
IRQ_WORD = re.compile(r"([a-z0-9+-]+)@0x([0-9a-f]+)=(\d+)")
PAGE = 4096
RAM = 256 << 20

# vectors= per host: the default (None) everywhere, and 10.0's property set each way.
VECTORS = [None] + ([2, 1, 0, 3, 4] if HOST.profile.has_vectors_property else [])
# The handler names ballast registers (drivers/virtio/virtio_pci.c): what carries what
# (with a vector per queue, the stats queue's is the one stats requests arrive on).
CONFIG_NAME = {"msix": "balloon-config", "msix-vq": "balloon-config", "msix-shared": "balloon",
               "intx": "balloon-intx"}
QUEUE_NAME = {"msix": "balloon-queues", "msix-vq": "balloon-stats", "msix-shared": "balloon",
              "intx": "balloon-intx"}
PER_QUEUE = ("balloon-inflate", "balloon-deflate", "balloon-stats")


def irq(vm: BallastVM) -> Dict[str, tuple]:
    """`irq`: handler name -> (vector, interrupts taken)."""
    answer = vm.console("irq")
    assert answer.startswith("ok "), answer
    words = answer[3:].split()
    got = {}
    for w in words:
        m = IRQ_WORD.fullmatch(w)
        assert m, f"irq answered {answer!r}"
        got[m.group(1)] = (int(m.group(2), 16), int(m.group(3)))
    return got


def requests(vm: BallastVM) -> int:
    m = re.match(r"ok seq=\d+ requests=(\d+) ", vm.console("stats show"))
    assert m
    return int(m.group(1))


def steady(vm: BallastVM, name: str) -> tuple:
    """(stats requests answered, interrupts on `name`'s vector), read while no request
    came in between (requests the same before and after the irq read)."""
    for _ in range(10):
        before = requests(vm)
        count = irq(vm)[name][1]
        if requests(vm) == before:
            return before, count
    raise AssertionError("a stats request kept arriving around the irq read")


@pytest.mark.parametrize("vectors", VECTORS, ids=lambda v: "default" if v is None else f"vectors-{v}")
def test_interrupt_delivery(ballast_vm, vectors: Optional[int]):
    opts = "" if vectors is None else f"vectors={vectors}"
    vm = ballast_vm(memory="256M", **BOOT_PATHS["pvh-q35"].vm_kwargs(opts))
    vm.wait_ready(BOOT_TIMEOUT)
    mode = up_line(vm)["interrupts"]
    HOST.expect("balloon interrupt mode", mode, HOST.profile.irq_mode(pci=True, vectors=vectors),
                f"vectors={vectors}")
    handlers = irq(vm)
    assert {"timer", "com1"} <= set(handlers), handlers
    config, queue = CONFIG_NAME[mode], QUEUE_NAME[mode]
    assert config in handlers and queue in handlers, handlers
    if mode == "msix":
        # two vectors of their own, message-signalled (ballast hands those out from 0xc0)
        assert handlers[config][0] != handlers[queue][0] and min(handlers[config][0], handlers[queue][0]) >= 0xc0
        assert "balloon-intx" not in handlers and "balloon" not in handlers
        assert not set(PER_QUEUE) & set(handlers), handlers
    elif mode == "msix-vq":
        # config and each queue a vector of its own, nothing shared
        vectors_used = [handlers[n][0] for n in (config,) + PER_QUEUE]
        assert len(set(vectors_used)) == 4 and min(vectors_used) >= 0xc0, handlers
        assert not {"balloon-intx", "balloon", "balloon-queues"} & set(handlers), handlers
    elif mode == "msix-shared":
        assert handlers[config][0] >= 0xc0 and "balloon-intx" not in handlers
    else:
        assert handlers[config][0] < 0xc0 and not {"balloon-config", "balloon-queues", "balloon"} & set(handlers)

    # Stats: every request is one interrupt on the queues' vector (nothing else moves
    # on the queues while the balloon is at rest).
    bal = Balloon(vm)
    assert bal.set_interval(1) == {}
    first = bal.wait_update(bal.stats()["last-update"], 10)
    r0, c0 = steady(vm, queue)
    u = first
    for _ in range(3):
        u = bal.wait_update(u.last_update, 10)
    r1, c1 = steady(vm, queue)
    assert r1 - r0 >= 3, (r0, r1)
    # (a shared vector also carries config changes: there were none meanwhile)
    assert c1 - c0 == r1 - r0, f"{c1 - c0} interrupts on {queue} for {r1 - r0} stats requests"

    # A balloon target: one config change, one interrupt on the config vector; the
    # inflate traffic goes on the queues' vector.
    assert bal.set_interval(0) == {}
    cfg0 = irq(vm)[config][1]
    host = Host(vm, RAM)
    want = host.balloon(RAM - (32 << 20))
    host.wait_actual(RAM - (32 << 20))
    m = settled(vm, host, False, target=want)
    assert m["balloon_pages"] == want == (32 << 20) // PAGE
    cfg1 = irq(vm)[config][1]
    if mode in ("msix", "msix-vq"):
        HOST.expect("config interrupts for one balloon target", cfg1 - cfg0, 1)
    else:
        assert cfg1 - cfg0 >= 1, (cfg0, cfg1)
    assert host.balloon(RAM) == 0
    host.wait_actual(RAM)
    assert settled(vm, host, False, target=0)["balloon_pages"] == 0
    if mode == "msix-vq":
        # the page traffic came on the inflate and deflate queues' own vectors
        after = irq(vm)
        assert after["balloon-inflate"][1] >= 1 and after["balloon-deflate"][1] >= 1, after
    assert up_line(vm)["interrupts"] == mode  # (one up line: the device was not brought up twice)

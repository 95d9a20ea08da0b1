"""CH's resize calls translated to QMP (harness/memvisor/qmpcontrol.py), against a real QEMU.

QEMU is started paused (-S): qom-set, object-add, device_add and balloon are all taken by a
machine that has not run, and query-memory-devices / query-memory-size-summary show what they
did. The guest's side of a resize (Linux plugging what QEMU offers) is make
conformance-compare's, in the linux-resize-* cases.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from memvisor.qmp import Qmp
from memvisor.qmpcontrol import QmpControl

MiB = 1 << 20
QEMU = shutil.which("qemu-system-x86_64")
pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed (ci/deps.sh)")


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[str]:
    sock = str(tmp_path / "qmp")
    p = subprocess.Popen([str(QEMU), "-S", "-machine", "q35", "-accel", "tcg", "-nodefaults",
                          "-display", "none", "-m", "256M,slots=4,maxmem=1G",
                          "-object", "memory-backend-ram,id=hp,size=256M",
                          "-device", "virtio-mem-pci,id=vmem-mem0,memdev=hp,requested-size=0,"
                          "block-size=2M",
                          "-device", "virtio-balloon-pci,id=balloon0",
                          "-qmp", f"unix:{sock},server=on,wait=off"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield sock
    finally:
        p.kill()
        p.wait()


def control(sock: str, **spec) -> QmpControl:
    c = QmpControl({"socket": sock, "boot_sizes": {"mem0": 256 * MiB}, **spec})
    assert c.wait_ready(10.0)
    return c


def requested(sock: str) -> int:
    with Qmp(sock) as q:
        dev, = [d["data"] for d in q.command("query-memory-devices") if d["type"] == "virtio-mem"]
    return dev["requested-size"]


def test_virtio_mem_resizes_are_requested_size(qemu: str) -> None:
    c = control(qemu, virtio_mem={"mem0": "vmem-mem0"})
    assert c.call("PUT", "vm.resize", {"desired_ram": 320 * MiB}) == (204, "")
    assert c.last_sent == [["qom-set", {"path": "/machine/peripheral/vmem-mem0",
                                        "property": "requested-size", "value": 64 * MiB}]]
    assert c.call("PUT", "vm.resize-zone", {"id": "mem0", "desired_ram": 384 * MiB})[0] == 204
    # Not a multiple of the block size, above the backend, an unknown zone: QEMU's own refusals.
    for body in ({"id": "mem0", "desired_ram": 257 * MiB},
                 {"id": "mem0", "desired_ram": 1024 * MiB},
                 {"id": "nosuch", "desired_ram": 384 * MiB}):
        status, why = c.call("PUT", "vm.resize-zone", body)
        assert status == 400 and why and "\n" not in why, (body, why)
    c.close()
    assert requested(qemu) == 128 * MiB


def test_acpi_resizes_add_and_remove_dimms(qemu: str) -> None:
    c = control(qemu, dimm_backend={"qom-type": "memory-backend-ram", "merge": False})
    assert c.call("PUT", "vm.resize", {"desired_ram": 384 * MiB}) == (204, "")
    assert [name for name, _ in c.last_sent] == ["object-add", "device_add"]
    assert c.last_sent[0][1] == {"qom-type": "memory-backend-ram", "merge": False,
                                 "id": "dimm1-mem", "size": 128 * MiB}
    status, body = c.call("GET", "vm.info")
    assert status == 200 and '"memory_actual_size": 402653184' in body
    assert c.dimms == [("dimm1", 128 * MiB)]
    # Past maxmem: QEMU takes the backend and refuses the DIMM; the DIMMs known stay as they were.
    status, why = c.call("PUT", "vm.resize", {"desired_ram": 1536 * MiB})
    assert status == 400 and [name for name, _ in c.last_sent] == ["object-add", "device_add"]
    assert c.dimms == [("dimm1", 128 * MiB)]
    # 64 MiB less is no DIMM: nothing is sent.
    status, why = c.call("PUT", "vm.resize", {"desired_ram": 320 * MiB})
    assert status == 400 and why.startswith("no QMP translation") and c.last_sent == []
    assert c.call("PUT", "vm.resize", {"desired_ram": 256 * MiB}) == (204, "")
    assert c.last_sent == [["device_del", {"id": "dimm1"}]] and c.dimms == []


def test_balloon_target_is_the_ram_less_the_balloon(qemu: str) -> None:
    c = control(qemu, balloon=True)
    assert c.call("PUT", "vm.resize", {"desired_balloon": 64 * MiB}) == (204, "")
    assert c.last_sent == [["balloon", {"value": 192 * MiB}]]
    assert c.call("PUT", "vm.resize", {"desired_balloon": 512 * MiB})[0] == 400
    assert c.call("GET", "vm.info") == (200, '{"memory_actual_size": 268435456}')


def test_what_is_not_a_ch_resize_call_is_refused_unsent(qemu: str) -> None:
    c = control(qemu, virtio_mem={"mem0": "vmem-mem0"})
    for call in (("PUT", "vm.resize", "{\"desired_ram\": "), ("PUT", "vm.resize",
                 {"desired_ram": "1G"}), ("PUT", "vm.boot", {})):
        status, why = c.call(*call)
        assert status == 400 and why.startswith("no QMP translation") and c.last_sent == []

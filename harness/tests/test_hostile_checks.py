"""conformance/hostile.py's judgement on made-up results: a clean run passes, and each way memvisor
can fail the hostile guest (a crash, a hang, a sanitizer report, a wrong status, a bad request
not logged, host state left behind) is caught."""
from __future__ import annotations

import json

import pytest

from conformance import cases, hostile

MiB = 1 << 20
HOST = 0x7f0000000000

STDOUT = """memvisor-hostile 1
hostile_dev dev=vmem0 base=0xc0001000 block=0x200000 addr=0x110000000 region=0x10000000
hostile_dev dev=balloon0 base=0xc0002000 block=0x0 addr=0x0 region=0x0
hostile_guest devices=2 mhpc=0x0 ged=0xc0000000 hole=0x10001000 ram_end=0x10000000
attack dev=vmem0 name=desc_beyond_phys result=used status=0xf still_worked=1 t_ms=1
attack dev=vmem0 name=desc_in_hole result=used status=0xf still_worked=1 t_ms=2
attack dev=vmem0 name=chain_loop result=used status=0xf still_worked=1 t_ms=3
attack dev=vmem0 name=plug_beyond_region answer=error
attack dev=vmem0 name=plug_all_blocks answer=nack
attack dev=vmem0 name=unplug_all_race answer=0,0,0,0,0,3
attack dev=vmem0 name=unplug_own_buffers result=used written=10 plugged=0x200000
attack dev=vmem0 name=unplug_own_buffers result=used status=0xf still_worked=1 t_ms=4
attack dev=balloon0 name=desc_beyond_phys result=used status=0xf still_worked=1 t_ms=5
attack dev=balloon0 name=pfn_in_hole result=used status=0xf still_worked=1 t_ms=6
attack dev=ged name=register_garbage read_sum=0x3
attack dev=ports name=flood debug_writes=3
PASS: ram_intact
SUMMARY: ok pass=10 skip=1
"""

STDERR = f"""memvisor: zone mem0 backing=anonymous_thp host=0x{HOST:x} size=536870912 page_size=4096
memvisor: debug-port code=0x01 t_us=1
memvisor: debug-port code=0x02 t_us=2
memvisor: virtio-mem queue 0: descriptor 0: 0x400000000000+24 is not in guest RAM (further bad requests on this queue are not logged until a reset)
memvisor: virtio-mem queue 0: descriptor 0: 0x10001000+24 is not in guest RAM (further bad requests on this queue are not logged until a reset)
memvisor: virtio-mem queue 0: chain from 0 loops back to descriptor 0 (further bad requests on this queue are not logged until a reset)
memvisor: virtio-mem (zone mem0): request 0 at 0x120000000 for 1 blocks refused: an unknown type, a range outside the region or not in blocks, or blocks not all unplugged
memvisor: virtio-mem (zone mem0): request 1 at 0x110000000 for 1 blocks refused: an unknown type, a range outside the region or not in blocks, or blocks not all plugged
memvisor: virtio-mem (zone mem0): unplug of 0x0+0x200000 of the region refused: it holds the request's own buffers or rings
memvisor: virtio-balloon queue 0: descriptor 0: 0x400000000000+24 is not in guest RAM (further bad requests on this queue are not logged until a reset)
memvisor: virtio-balloon: inflated PFN 0x10001 (0x10001000) is not guest RAM; skipped
memvisor: GED: write of 0x5a to its read-only register ignored (further ones are not logged)
memvisor: debug-port code=0x10 t_us=3
memvisor: debug-port code=0x11 t_us=4
memvisor: debug-port code=0x12 t_us=5
"""


def smaps(region_kb: int) -> str:
    boot = HOST + 256 * MiB
    return (f"{HOST:x}-{boot:x} rw-p 00000000 00:00 0\nRss: 4096 kB\n"
            f"{boot:x}-{boot + 256 * MiB:x} rw-p 00000000 00:00 0\nRss: {region_kb} kB\n")


@pytest.fixture(scope="module")
def matrix() -> dict[str, cases.Case]:
    return {c.name: c for c in cases.generate("full") if c.guest == "hostile"}


def good(end: str = "exit") -> dict:
    return {"rc": hostile.HOLD_STATUS if end == "hold" else 0, "stdout": STDOUT,
            "stderr": STDERR, "timed_out": False, "during": {"smaps": smaps(0)},
            "hp_before": {"free_2048kB": 5}, "hp_after": {"free_2048kB": 5}}


def failures(matrix: dict, result: dict, name: str = "hostile-vmem-balloon") -> list[str]:
    """As make conformance checks the case (conformance/run.check)."""
    from conformance import run
    return run.check(matrix[name], {"setup_errors": [], **result})


def test_cases_are_in_the_matrix(matrix):
    assert set(matrix) == {c.name for c in hostile.CASES}
    for c in matrix.values():
        assert c.config.kernel == hostile.GUEST and c.end == hostile.by_name(c.name).end
    assert "quick" in matrix["hostile-vmem-balloon"].tags


def test_clean_run_passes(matrix):
    assert failures(matrix, good()) == []
    # A hang retried in the test host where memvisor stopped its vCPUs: the host's, passed.
    host_hang = {"seconds": 90.2, "console_tail": [],
                 "vcpus": ["memvisor: vCPU 0 at stop: rip=0xffffffffc055120c rflags=0x10246"]}
    assert failures(matrix, {**good(), "hung_attempts": [host_hang]}) == []
    assert failures(matrix, good("hold"), "hostile-vmem-hold") == []


@pytest.mark.parametrize("doctor, why", [
    (dict(rc=-7), "killed by signal 7"),
    (dict(rc=3), "exited with status 3, expected 0"),
    (dict(timed_out=True, stuck="vcpu0 in KVM_RUN"), "hung"),
    (dict(stderr=STDERR + "==42==ERROR: AddressSanitizer: heap-buffer-overflow\n"),
     "sanitizer report"),
    (dict(stderr=STDERR + "vmm/virtio/queue.c:12:3: runtime error: shift exponent\n"),
     "sanitizer report"),
    (dict(stdout=STDOUT.replace("SUMMARY: ok pass=10 skip=1\n", "")), "no SUMMARY"),
    (dict(stdout=STDOUT + "error check=recovery dev=vmem0 attack=x: no answer after a reset\n"),
     "guest: error check=recovery"),
    (dict(hp_after={"free_2048kB": 4}), "huge pages free_2048kB: 5 before, 4 after"),
    # A retried hang whose vCPUs memvisor could not stop is memvisor's (a lock), not the host's.
    (dict(hung_attempts=[{"seconds": 90.1, "vcpus": [], "console_tail": ["attack dev=x"]}]),
     "did not stop its vCPUs"),
])
def test_doctored_results_fail(matrix, doctor, why):
    r = good()
    r.update(doctor)
    assert any(why in f for f in failures(matrix, r)), failures(matrix, r)


def test_hold_status_is_the_runners(matrix):
    r = good("hold")
    r["rc"] = 0
    assert any("expected 143" in f for f in failures(matrix, r, "hostile-vmem-hold"))


def test_guest_failure_status_is_expected(matrix):
    """A guest that found a fault exits 1: that status is right, its FAIL lines are the failure."""
    r = good()
    r["stdout"] = STDOUT.replace("SUMMARY: ok", "FAIL: bad_chains errors=1\nSUMMARY: FAIL 1")
    r["rc"] = 1
    bad = failures(matrix, r)
    assert bad == ["guest: FAIL: bad_chains errors=1"]


@pytest.mark.parametrize("line, attack", [
    ("chain from 0 loops back", "chain_loop"),
    ("request 1 at 0x110000000", "unplug_all_race"),
    ("unplug of 0x0+0x200000", "unplug_own_buffers"),
    ("inflated PFN 0x10001", "pfn_in_hole"),
    ("virtio-balloon queue 0: descriptor 0", "desc_beyond_phys"),
    ("GED: write of", "register_garbage"),
])
def test_unlogged_bad_request_fails(matrix, line, attack):
    r = good()
    r["stderr"] = "".join(ln for ln in STDERR.splitlines(keepends=True) if line not in ln)
    bad = failures(matrix, r)
    assert any("memvisor logged" in f and attack in f for f in bad), bad


def test_one_line_for_two_attacks_of_a_pattern_fails(matrix):
    """desc_beyond_phys and desc_in_hole share a pattern: one line does not cover both."""
    r = good()
    r["stderr"] = STDERR.replace(
        "memvisor: virtio-mem queue 0: descriptor 0: 0x10001000+24 is not in guest RAM", "")
    assert any("logged 1 lines" in f and "desc_in_hole" in f for f in failures(matrix, r))


def test_an_attack_reported_twice_needs_one_line():
    assert [a for a in hostile.attacks(STDOUT) if a[1] == "unplug_own_buffers"] == [
        ("vmem", "unplug_own_buffers", " result=used written=10 plugged=0x200000")]


def test_debug_flood_must_be_logged(matrix):
    r = good()
    r["stderr"] = STDERR.replace("memvisor: debug-port code=0x12 t_us=5\n", "") \
        .replace("memvisor: debug-port code=0x11 t_us=4\n", "") \
        .replace("memvisor: debug-port code=0x10 t_us=3\n", "")
    r["stderr"] = r["stderr"].replace("memvisor: debug-port code=0x02 t_us=2\n", "")
    assert any("debug-port lines for 3 writes" in f for f in failures(matrix, r))


def test_memory_left_in_an_unplugged_region_fails(matrix):
    r = good("hold")
    r["during"] = {"smaps": smaps(64 * 1024)}
    bad = failures(matrix, r, "hostile-vmem-hold")
    assert any("virtio-mem region holds 65536 KiB" in f for f in bad), bad
    r["during"] = {"smaps": smaps(2048)}     # a partly touched THP at the edge: within slack
    assert failures(matrix, r, "hostile-vmem-hold") == []


def test_devices_must_all_be_attacked(matrix):
    r = good()
    r["stdout"] = STDOUT.replace("hostile_dev dev=balloon0 base=0xc0002000 block=0x0 addr=0x0 "
                                 "region=0x0\n", "")
    assert any("attacked 0 balloons" in f for f in failures(matrix, r))
    r = good()
    assert any("memory hotplug controller at 0x0, expected one" in f
               for f in failures(matrix, r, "hostile-acpi-balloon"))


def info_step(**info) -> dict:
    body = {"config": {"memory": {"size": 256 * MiB, "hotplug_size": 256 * MiB}},
            "state": "Running", "memory_actual_size": 256 * MiB}
    body.update(info)
    return {"name": "after-attacks", "info_status": 200, "info": json.dumps(body)}


def test_vm_info_after_the_attacks(matrix):
    """The held case asks vm.info: memory the refused requests plugged or ballooned shows."""
    assert matrix["hostile-vmem-hold"].steps and matrix["hostile-vmem-hold"].config.api_socket
    r = good("hold")
    r["steps"] = [info_step()]
    assert failures(matrix, r, "hostile-vmem-hold") == []
    r["steps"] = [info_step(memory_actual_size=258 * MiB)]
    assert any("memory_actual_size" in f for f in failures(matrix, r, "hostile-vmem-hold"))
    r["steps"] = [info_step(config={"memory": {"hotplugged_size": 2 * MiB}})]
    assert any("hotplugged_size 2097152" in f for f in failures(matrix, r, "hostile-vmem-hold"))
    r["steps"] = [{"name": "after-attacks", "info_status": None, "info": "connection refused"}]
    assert any("vm.info after the attacks" in f for f in failures(matrix, r, "hostile-vmem-hold"))

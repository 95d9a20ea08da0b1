"""The fault-injection checks (conformance/faults.py) on doctored results: each fault they must
catch makes them fail, a clean result passes."""
from __future__ import annotations

import signal

from conformance import faults
from conformance.faults import GROWN, GROWN_DATA, MiB, NEW, by_name, check

OK_GROWN = {"exists": True, "size": len(GROWN_DATA), "head_hex": GROWN_DATA[:4096].hex()}


def refused_result(**kw) -> dict:
    r = {"rc": 1, "timed_out": False, "stdout": "", "files_after": {},
         "stderr": "memvisor: --memory-zone: zone 'mem0': file=/x: cannot allocate 128 MiB in "
                   "its file system: No space left on device\n"}
    r.update(kw)
    return r


def test_refused_clean_passes():
    assert check(by_name("fault-tmpfs-full"), refused_result()) == []


def test_refused_catches_sigbus_two_lines_and_leftovers():
    c = by_name("fault-tmpfs-full")
    assert any("signal 7" in b for b in check(c, refused_result(rc=-signal.SIGBUS)))
    two = refused_result(stderr="memvisor: zone 'mem0': No space left on device\nmore\n")
    assert any("2 lines" in b for b in check(c, two))
    vague = refused_result(stderr="memvisor: failed\n")
    assert any("does not say" in b for b in check(c, vague))
    left = refused_result(files_after={c.files[0]: {"exists": True, "size": 0}})
    assert any("still exists" in b for b in check(c, left))
    ran = refused_result(stdout="memvisor-resize 1\n")
    assert any("the guest ran" in b for b in check(c, ran))


def signal_result(c: faults.FaultCase, ran: bool, **files) -> dict:
    return {"rc": 128 + c.sig, "timed_out": False, "stderr": "",
            "stdout": "memvisor-resize 1\n" if ran else "",
            "files_after": {NEW: files.get("new", {"exists": False}),
                            GROWN: files.get("grown", OK_GROWN)}}


def test_signal_before_the_guest():
    c = by_name("fault-sigterm-prefault")
    assert check(c, signal_result(c, False)) == []
    assert any("left behind" in b for b in
               check(c, signal_result(c, False, new={"exists": True, "size": 192 * MiB})))
    grown = {"exists": True, "size": 64 * MiB, "head_hex": GROWN_DATA[:4096].hex()}
    assert any("not restored" in b for b in check(c, signal_result(c, False, grown=grown)))
    assert any("status 1" in b for b in check(c, {**signal_result(c, False), "rc": 1}))
    assert any("the guest ran" in b for b in check(c, signal_result(c, True)))


def test_signal_after_the_guest_ran():
    c = by_name("fault-sigint-resize")
    kept = {"new": {"exists": True, "size": 192 * MiB},
            "grown": {"exists": True, "size": 64 * MiB}}
    assert check(c, signal_result(c, True, **kept)) == []
    assert any("kept at 192 MiB" in b for b in check(c, signal_result(c, True)))
    sock = signal_result(c, True, **kept)
    sock["files_after"][faults.socket_path(c.name)] = {"exists": True, "size": 0}
    assert any("API socket" in b for b in check(c, sock))


def _plug(plugged: int, answer: int) -> str:
    return f"resize seq=1 kind=virtio-mem dev=0 requested=0x1 plugged={plugged:#x} " \
           f"answer={answer} verified_bad_pages=0\n"


def steps_result(actuals: list[int], matched: bool = True, hp_after: int = 64) -> dict:
    steps = [{"name": n, "status": 204, "matched": matched,
              "info": f'{{"memory_actual_size": {a}}}'}
             for n, a in zip(("plug-on-drained-pool", "pool-back"), actuals)]
    return {"rc": 143, "timed_out": False, "stderr": "", "steps": steps,
            "stdout": 'cmdline value="fill=1"\nfill pages=100\n',
            "triggered": [{"match": "zone mem0", "rc": 0, "output": "1 60"}],
            "hp_before": {"free_2048kB": 64}, "hp_after": {"free_2048kB": hp_after}}


def test_drained_pool_steps():
    c = by_name("fault-hugetlb-drained-after-map")
    assert check(c, steps_result([544 * MiB, 574 * MiB])) == []
    assert any("memory_actual_size" in b for b in check(c, steps_result([576 * MiB, 574 * MiB])))
    assert any("no guest line" in b for b in check(c, steps_result([544 * MiB, 574 * MiB], False)))
    assert any("huge pages" in b for b in check(c, steps_result([544 * MiB, 574 * MiB],
                                                                 hp_after=48)))
    sigbus = {**steps_result([544 * MiB, 574 * MiB]), "rc": -signal.SIGBUS}
    assert any("SIGBUS" in b for b in check(c, sigbus))
    failed = steps_result([544 * MiB, 574 * MiB])
    failed["triggered"][0]["rc"] = 1
    assert any("fault injection" in b for b in check(c, failed))


def load_result(reqs: list[dict], plugged: tuple[int, int], actual: int) -> dict:
    out = "".join(f"resize seq=1 kind=virtio-mem dev={d} requested=0x1 plugged={p:#x} answer=0 "
                  f"verified_bad_pages=0\n" for d, p in enumerate(plugged))
    last = {"name": "final-mem1", "status": 204, "info": f'{{"memory_actual_size": {actual}}}',
            "smaps": ""}
    return {"rc": 143, "timed_out": False, "stderr": "", "stdout": out,
            "steps": [{"name": "load", "load": {"requests": reqs}}, last]}


def test_load():
    c = by_name("fault-api-load")
    n = c.steps[0]["load"]["threads"] * c.steps[0]["load"]["requests"]
    good = [{"kind": "info", "status": 200, "seconds": 0.1, "one_line": True}] * (n - 1) + \
        [{"kind": "info", "status": None, "refused": True, "seconds": 0.0}]
    final = (128 * MiB, 32 * MiB)
    assert check(c, load_result(good, final, 288 * MiB)) == []
    stuck = good[:-1] + [{"kind": "info", "status": None, "error": "timed out", "seconds": 30}]
    assert any("never answered" in b for b in check(c, load_result(stuck, final, 288 * MiB)))
    slow = good[:-1] + [{"kind": "info", "status": 200, "seconds": 12.0, "one_line": True}]
    assert any("more than" in b for b in check(c, load_result(slow, final, 288 * MiB)))
    err = good[:-1] + [{"kind": "info", "status": 500, "seconds": 0.1, "one_line": True}]
    assert any("HTTP 500" in b for b in check(c, load_result(err, final, 288 * MiB)))
    assert any("memory_actual_size" in b for b in check(c, load_result(good, final, 300 * MiB)))
    assert any("plugged" in b for b in check(c, load_result(good, (0, 32 * MiB), 160 * MiB)))

"""conformance/resize.py's judgement on made-up results: each kind of wrong answer is caught.

The sequences run against real VMs in the matrix; here the checks themselves are shown to fail
when the guest, the API or the host says something other than the model.
"""
from __future__ import annotations

import copy
import json

import pytest

from conformance import cases, resize
from memvisor.resizemodel import OK, REFUSED, ResizeModel

MiB = 1 << 20
HOST = 0x7f0000000000


def smaps(zone_kb: int, other_kb: int = 0) -> str:
    return (f"{HOST:x}-{HOST + (1 << 30):x} rw-p 00000000 00:00 0\nRss: {zone_kb} kB\n"
            f"1000-2000 rw-p 00000000 00:00 0\nRss: {other_kb} kB\n")


def case(name: str) -> cases.Case:
    return next(c for c in cases.generate("full") if c.name == name)


def good_result(c: cases.Case) -> dict:
    """What a conforming VM gives: each step answered as planned, the guest following it."""
    zone0 = c.expect.zones[0]
    stdout = ["memvisor-resize 1"]
    for i, h in enumerate(x for x in c.expect.hotplug if x.kind == "virtio-mem"):
        stdout.append(f"virtio_mem dev={i} base=0xc0000000 irq=16 block=0x200000 "
                      f"addr=0x{(4 << 30) + i * (1 << 30):x} region=0x{h.size:x} usable=0x{h.size:x} "
                      f"plugged=0x0 requested=0x0 node=-1")
    steps, base = [], 64 * 1024
    dimms, slot, balloon_max = 0, 0, 0
    if c.expect.balloon_size is not None:
        stdout.append(f"balloon_dev base=0xc0001000 irq=17 features=0x{resize._balloon_features(c.config.balloon):x} "
                      f"num_pages={c.expect.balloon_size // 4096}")
    for p in c.steps:
        lines = []
        want = p["expect"]
        if p["wait"]:
            for i, z in enumerate(zid for zid in want["plugged"]):
                lines.append(f"resize seq=1 kind=virtio-mem dev={i} requested=0x{want['plugged'][z]:x} "
                             f"plugged=0x{want['plugged'][z]:x} answer=0 verified_bad_pages=0")
            for d in want["dimms"][slot:]:
                lines.append(f"dimm seq=1 slot={slot} base=0x100000000 size=0x{d:x} pxm=0 bad_pages=0")
                slot += 1
            lines.append("SUMMARY: ok pass=4 skip=0")
        dimms = sum(want["dimms"])
        balloon_max = max(balloon_max, want["balloon"] - (c.expect.balloon_size or 0))
        plugged = sum(want["plugged"].values())
        if p["wait"] and want["balloon"] != c.expect.balloon_size:
            lines.insert(0, f"balloon seq=1 target=0x{want['balloon']:x} actual=0x{want['balloon']:x} "
                            f"was=0x0 deflated_not_zero=0")
        steps.append({"name": p["name"], "status": p["expect_status"],
                      "info_status": 200, "info": json.dumps({"memory_actual_size": want["actual"]}),
                      "body": "" if p["expect_status"] == OK else "vm.resize: refused\n",
                      "matched": bool(p["wait"]), "lines": lines,
                      "smaps": smaps(base + plugged // 1024 - balloon_max // 1024, dimms // 1024)})
    steps[0]["smaps_before"] = smaps(base + zone0.hotplugged_size // 1024)
    return {"timed_out": False, "rc": 143, "stdout": "\n".join(stdout) + "\n", "steps": steps,
            "stderr": f"memvisor: zone {zone0.zone} backing={zone0.backing} host=0x{HOST:x} "
                      f"size={zone0.boot_size + zone0.hotplug_size} page_size={zone0.page_size}\n"}


@pytest.mark.parametrize("name", ["resize-vmem-default", "resize-acpi-grow", "resize-balloon"])
def test_conforming_result_passes(name: str) -> None:
    c = case(name)
    assert resize.check(c.expect, list(c.steps), good_result(c), c.config.balloon) == []


def test_balloon_answers_are_checked() -> None:
    c = case("resize-balloon")
    good = good_result(c)
    first = next(i for i, p in enumerate(c.steps) if p["wait"])

    def bad(mutate) -> list[str]:
        r = copy.deepcopy(good)
        mutate(r)
        return resize.check(c.expect, list(c.steps), r, c.config.balloon)

    assert any("memory_actual_size" in f for f in bad(lambda r: r["steps"][first].update(
        info=json.dumps({"memory_actual_size": 1}))))
    assert any("balloon holds" in f for f in bad(lambda r: r["steps"][first].update(
        lines=["SUMMARY: ok pass=5 skip=0"])))
    assert any("on the host" in f for f in bad(lambda r: r["steps"][first].update(smaps=smaps(64 * 1024))))
    assert any("features" in f for f in bad(lambda r: r.update(
        stdout=r["stdout"].replace("features=0x1", "features=0x5"))))


def test_each_wrong_answer_is_caught() -> None:
    c = case("resize-vmem-default")
    good = good_result(c)
    first_ok = next(i for i, p in enumerate(c.steps) if p["wait"])
    refused = next(i for i, p in enumerate(c.steps) if p["expect_status"] == REFUSED)

    def bad(mutate) -> list[str]:
        r = copy.deepcopy(good)
        mutate(r)
        return resize.check(c.expect, list(c.steps), r)

    assert any("HTTP 500" in f for f in bad(lambda r: r["steps"][refused].update(status=500)))
    assert any("one-line reason" in f for f in bad(lambda r: r["steps"][refused].update(body="")))
    assert any("did not report" in f for f in bad(lambda r: r["steps"][first_ok].update(matched=False)))
    assert any("plugged in the guest" in f for f in bad(lambda r: r["steps"][first_ok].update(
        lines=[ln.replace("plugged=0x", "plugged=0x1") for ln in r["steps"][first_ok]["lines"]])))
    assert any("on the host" in f for f in bad(lambda r: r["steps"][first_ok].update(smaps=smaps(64 * 1024))))
    assert any("must change nothing" in f for f in bad(lambda r: r["steps"][refused]["lines"].append(
        "resize seq=9 kind=virtio-mem dev=0 requested=0x0 plugged=0x0 answer=0 verified_bad_pages=0")))
    assert any("guest: FAIL" in f for f in bad(lambda r: r.update(stdout=r["stdout"] + "FAIL: integrity errors=1\n")))
    assert any("verified_bad_pages=3" in f for f in bad(lambda r: r["steps"][first_ok].update(
        lines=[ln.replace("verified_bad_pages=0", "verified_bad_pages=3") for ln in r["steps"][first_ok]["lines"]])))


def test_acpi_dimm_missing_or_not_resident_is_caught() -> None:
    c = case("resize-acpi-grow")
    good = good_result(c)
    r = copy.deepcopy(good)
    r["steps"][0]["lines"] = ["SUMMARY: ok pass=4 skip=0"]
    assert any("DIMMs" in f for f in resize.check(c.expect, list(c.steps), r))
    r = copy.deepcopy(good)
    r["steps"][0]["smaps"] = smaps(64 * 1024, 0)
    assert any("less than" in f for f in resize.check(c.expect, list(c.steps), r))


def test_model_follows_cloud_hypervisor_rules() -> None:
    c = case("resize-acpi-grow")
    m = ResizeModel(c.expect, virtio_mem=False)
    assert m.resize(256 * MiB + 100 * MiB) == REFUSED          # not a 128 MiB step
    assert m.resize(384 * MiB) == OK and m.dimms == [128 * MiB]
    assert m.resize(256 * MiB) == REFUSED                      # ACPI memory never shrinks
    assert m.resize(384 * MiB) == OK and m.dimms == [128 * MiB]   # the same size: no change
    v = ResizeModel(case("resize-vmem-default").expect, virtio_mem=True)
    assert v.resize(256 * MiB + 3 * MiB) == REFUSED            # not a 2 MiB block multiple
    assert v.resize(128 * MiB) == REFUSED and v.resize(2 << 30) == REFUSED
    assert v.resize(512 * MiB) == OK and v.plugged == {"mem0": 256 * MiB}
    assert v.resize_zone("nosuch", 512 * MiB) == REFUSED


def linux_report(total: int) -> str:
    return (f"memvisor-linux 1\nmeminfo total=0x{total:x} free=0x1000\nPASS: modules\n"
            f"SUMMARY: ok pass=1 skip=0\n")


def test_linux_memtotal_must_follow_each_step() -> None:
    c = case("linux-resize-vmem")
    base = 480 * MiB
    steps = []
    for p in c.steps:
        grown = p["expect"]["actual"] - 512 * MiB
        steps.append({"name": p["name"], "status": p["expect_status"], "body": "", "matched": True,
                      "lines": linux_report(base + grown).splitlines(keepends=True),
                      "info_status": 200, "info": json.dumps({"memory_actual_size": p["expect"]["actual"]})})
    good = {"timed_out": False, "rc": 143, "stdout": linux_report(base), "stderr": "", "steps": steps}
    assert resize.check_linux(c.expect, list(c.steps), good) == []
    short = copy.deepcopy(good)
    short["steps"][0]["lines"] = linux_report(base + 512 * MiB).splitlines(keepends=True)
    assert any("MemTotal moved by +512 MiB, expected +1024 MiB" in f
               for f in resize.check_linux(c.expect, list(c.steps), short))
    silent = copy.deepcopy(good)
    silent["steps"][1]["lines"] = []
    assert any("no Linux report" in f for f in resize.check_linux(c.expect, list(c.steps), silent))


def linux_balloon_report(total: int, free: int, held: int) -> list[str]:
    return [f"memvisor-linux 1\n", f"meminfo total=0x{total:x} free=0x{free:x}\n",
            f"balloon held=0x{held:x} inflated={held // 4096} deflated=0\n", "PASS: modules\n",
            "SUMMARY: ok pass=1 skip=0\n"]


def hog_lines(n: int, status: int = 0) -> list[str]:
    return [f"hog touched=0x{n:x} ms=900\n"] + \
        ([f"hog size=0x{n:x} bad_pages=0 ms=1000\n"] if status == 0 else []) + [f"hog status={status}\n"]


def linux_step(p: dict, lines: list[str], actual: int, **extra) -> dict:
    return {"name": p["name"], "status": p.get("expect_status"), "body": "", "matched": True,
            "lines": lines, "info_status": 200, "info": json.dumps({"memory_actual_size": actual}),
            "smaps": smaps(0), **extra}


TOTAL = 470 * MiB       # what Linux makes of 512 MiB


def deflate_on_oom_result(held_after: int = 150 * MiB) -> tuple[cases.Case, dict]:
    """linux-balloon-deflate-on-oom as a conforming VM and guest run it: MemTotal stays while
    the balloon holds 384 MiB, the 256 MiB hog gets what it needs from the balloon."""
    c = case("linux-balloon-deflate-on-oom")
    first = linux_balloon_report(TOTAL, 400 * MiB, 0)
    inflated = linux_balloon_report(TOTAL, 40 * MiB, 384 * MiB)
    after_hog = hog_lines(256 * MiB) + linux_balloon_report(TOTAL, 200 * MiB, held_after)
    deflated = linux_balloon_report(TOTAL, 400 * MiB, 0)
    p = c.steps
    steps = [linux_step(p[0], inflated, 128 * MiB, smaps_before=smaps(100 * 1024)),
             linux_step(p[1], after_hog[:1], 128 * MiB, sample_at_match={"smaps": smaps(0)}),
             linux_step(p[2], after_hog, 512 * MiB - held_after),
             linux_step(p[3], deflated, 512 * MiB)]
    stdout = "".join(first + inflated + after_hog + deflated)
    return c, {"timed_out": False, "rc": 143, "stdout": stdout, "stderr": "", "steps": steps}


def check_doo(r: dict) -> list[str]:
    c = case("linux-balloon-deflate-on-oom")
    return resize.check_linux(c.expect, list(c.steps), r, c.config.balloon)


def test_deflate_on_oom_conforming_run_passes() -> None:
    c, good = deflate_on_oom_result()
    assert [p["kind"] for p in c.steps if "kind" in p] == ["hog", "hog-done"]
    # With deflate_on_oom Linux keeps inflated pages in MemTotal: the model says so.
    assert [p["expect"]["memtotal"] for p in c.steps] == [512 * MiB] * 4
    assert check_doo(good) == []


def test_deflate_on_oom_failures_are_caught() -> None:
    _, good = deflate_on_oom_result()

    def bad(mutate) -> list[str]:
        r = copy.deepcopy(good)
        mutate(r)
        return check_doo(r)

    # The balloon kept its pages: the hog's memory cannot have come from it.
    _, kept = deflate_on_oom_result(held_after=384 * MiB)
    assert any("balloon gave back 0 MiB" in f for f in check_doo(kept))
    killed = hog_lines(256 * MiB, status=137) + linux_balloon_report(TOTAL, 200 * MiB, 150 * MiB)
    assert any("status 137 (killed: the OOM killer)" in f
               for f in bad(lambda r: r["steps"][2].update(lines=killed)))
    assert any("memory_actual_size" in f for f in bad(lambda r: r["steps"][2].update(
        info=json.dumps({"memory_actual_size": 128 * MiB}))))
    # Linux without deflate_on_oom's rule: MemTotal drops with the balloon.
    shrunk = linux_balloon_report(TOTAL - 384 * MiB, 40 * MiB, 384 * MiB)
    assert any("MemTotal moved by -384 MiB, expected +0 MiB" in f
               for f in bad(lambda r: r["steps"][0].update(lines=shrunk)))
    half = linux_balloon_report(TOTAL, 40 * MiB, 200 * MiB)
    assert any("balloon holds 200 MiB, expected 384 MiB" in f
               for f in bad(lambda r: r["steps"][0].update(lines=half)))
    assert any("did not write its 256 MiB hog" in f and "no `hog status=` line" in f
               for f in bad(lambda r: r["steps"][1].update(matched=False, lines=[])))
    assert any("MemTotal" in f for f in bad(lambda r: r["steps"][2].update(
        lines=hog_lines(256 * MiB) + linux_balloon_report(TOTAL - MiB * 64, 200 * MiB, 150 * MiB))))


def free_page_reporting_result(after_kb: int) -> dict:
    c = case("linux-balloon-free-page-reporting")
    report = linux_balloon_report(TOTAL, 400 * MiB, 0)
    p = c.steps
    steps = [linux_step(p[0], hog_lines(256 * MiB)[:1], 512 * MiB, smaps_before=smaps(100 * 1024),
                        sample_at_match={"smaps": smaps(360 * 1024)}),
             linux_step(p[1], hog_lines(256 * MiB) + report, 512 * MiB),
             linux_step(p[2], [], 512 * MiB, smaps=smaps(after_kb))]
    return {"timed_out": False, "rc": 143, "stdout": "".join(report + hog_lines(256 * MiB) + report),
            "stderr": "", "steps": steps}


def test_free_page_reporting_needs_the_host_rss_to_drop() -> None:
    c = case("linux-balloon-free-page-reporting")
    assert [p["kind"] for p in c.steps] == ["hog", "hog-done", "settle"]
    assert resize.check_linux(c.expect, list(c.steps), free_page_reporting_result(110 * 1024),
                              c.config.balloon) == []
    # Only 100 of the 256 MiB given back: less than FPR_FRACTION.
    kept = resize.check_linux(c.expect, list(c.steps), free_page_reporting_result(260 * 1024),
                              c.config.balloon)
    assert any("free page reporting gives freed memory back" in f for f in kept), kept
    never = free_page_reporting_result(110 * 1024)
    never["steps"][0]["sample_at_match"] = {"smaps": smaps(150 * 1024)}
    assert any("at the hog's peak" in f for f in resize.check_linux(
        c.expect, list(c.steps), never, c.config.balloon))

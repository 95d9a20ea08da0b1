"""The QEMU translation (harness/memvisor/qemuargs.py) and compare.json's construction."""
from __future__ import annotations

import pytest

from conformance import cases as matrix
from conformance import compare
from memvisor.differences import BY_ID, DIFFERENCES
from memvisor.qemuargs import QEMU_RULES, NotApplicable, QemuCommand, translate
from memvisor.rules import RULES


def _t(cfg, rule=None) -> QemuCommand:
    t = translate(cfg, rule, matrix.testhost_facts())
    assert isinstance(t, QemuCommand), t
    return t


def test_hugetlb_zone_on_host_node_is_a_bound_hugetlb_memfd():
    t = _t(matrix.vm("size=0", ["id=mem0,size=128M,hugepages=on,hugepage_size=2M,"
                                "host_numa_node=1,prefault=on"]))
    assert ("memory-backend-memfd,id=mem0,size=128M,hugetlb=on,hugetlbsize=2M,share=on,"
            "merge=off,prealloc=on,prealloc-threads=2,host-nodes=1,policy=bind") in t.args
    assert t.args[t.args.index("-machine") + 1] == "memory-backend=mem0,mem-merge=off"


def test_numa_virtio_mem_and_acpi_hotplug():
    t = _t(matrix.scenarios()["virtio-mem-zones-numa"])
    assert "virtio-mem-pci,id=vmem-mem1,memdev=mem1-hotplug,requested-size=64M,block-size=2M," \
           "node=1" in t.args
    assert t.args[t.args.index("-m") + 1] == "size=128M,slots=8,maxmem=512M"
    assert "node,nodeid=1,memdev=mem1,cpus=1" in t.args
    acpi = _t(matrix.scenarios()["acpi-hotplug"])
    assert acpi.args[acpi.args.index("-m") + 1] == "size=128M,slots=8,maxmem=384M"
    assert not any("virtio-mem" in a for a in acpi.args)


def test_cpu_lists_distances_and_balloon():
    t = _t(matrix.scenarios()["numa-spec-cpus"])
    assert "node,nodeid=0,memdev=mem0,cpus=1-3,cpus=7" in t.args
    t = _t(matrix.scenarios()["numa3-asym"])
    assert "dist,src=2,dst=0,val=40" in t.args
    b = _t(matrix.scenarios()["balloon"])
    assert "virtio-balloon-pci,id=balloon0" in b.args
    assert b.qmp_start == [("balloon", {"value": 192 << 20})]


def test_file_and_directory_zones():
    s = matrix.scenarios()
    assert "memory-backend-file,id=mem0,size=128M,mem-path=/tmp/memvisor-zone-dir,share=on," \
           "merge=off" in _t(s["dir-shared"]).args


def test_inexpressible_cases_are_na_with_a_known_reason():
    s = matrix.scenarios()
    t = translate(s["numa-spec-zones"], None, matrix.testhost_facts())
    assert isinstance(t, NotApplicable) and t.difference == "qemu-one-memdev-per-node"
    assert "[mem0,mem2]" in t.detail.replace("'", "").replace(" ", "")
    t = translate(s["files-mixed"], None, matrix.testhost_facts())
    assert isinstance(t, NotApplicable) and t.difference == "qemu-one-ram-backend"
    rej = matrix.rejections()["zones_need_memory_size_zero"]
    t = translate(rej, "zones_need_memory_size_zero")
    assert isinstance(t, NotApplicable) and t.difference == "ch-only-rule"
    assert isinstance(translate(rej, "parse"), NotApplicable)


def test_linux_cases_run_under_qemu_and_memvisor_only_guests_do_not():
    plans = {c.name: (c, compare.qemu_plan(c)) for c in matrix.generate("full")}
    linux = [(c, p) for c, p in plans.values() if c.guest == "linux"]
    assert linux and all(isinstance(p, QemuCommand) for _, p in linux)
    c, p = plans["linux-resize-acpi"]
    assert isinstance(p, QemuCommand) and p.dimm_backend == {"qom-type": "memory-backend-ram",
                                                             "merge": False}
    assert p.boot_sizes == {"mem0": 512 << 20}
    for c, p in plans.values():
        if c.guest in ("resize", "hostile"):
            assert isinstance(p, NotApplicable) and p.difference == "memvisor-devices-guest"


def test_every_na_and_rule_refers_to_the_single_lists():
    names = {r.name for r in RULES}
    assert QEMU_RULES <= names, QEMU_RULES - names
    assert len(BY_ID) == len(DIFFERENCES)
    for c in matrix.generate("full"):
        p = compare.qemu_plan(c)
        if isinstance(p, NotApplicable):
            assert p.difference in BY_ID, (c.name, p)


def _case(name: str) -> matrix.Case:
    return next(c for c in matrix.generate("full") if c.name == name)


def test_compare_row_same_and_explained():
    c = _case("anonymous-thp")
    plan = compare.qemu_plan(c)
    r = compare.build_row(c, "pass", [], "pass", [], [], plan, None)
    assert r["same"] and not r["unexplained"] and r["explanation"] == ""
    # A documented option difference: QEMU advises THP on everything.
    r = compare.build_row(_case("anonymous"), "pass", [], "fail",
                          ["zone mem0: VmFlags has 'hg', which it must not"], [], plan, None)
    assert not r["same"] and not r["unexplained"] and "qemu-thp-always" in r["explanation"]
    r = compare.build_row(_case("numa3-asym"), "pass", [], "refused", [], [], plan, None,
                          "qemu-system-x86_64: At least one asymmetrical pair of distances is "
                          "given, please provide distances for both directions")
    assert not r["unexplained"] and "qemu-slit-both-directions" in r["explanation"]


@pytest.mark.parametrize("mv,q,failures", [
    ("pass", "fail", ["zone mem0: NUMA policy default, expected bind:0"]),   # doctored
    ("pass", "refused", []),
    ("fail", "fail", ["zone mem0: VmFlags has 'hg', which it must not"]),   # memvisor's own bug
])
def test_unexplained_difference_fails_the_run(mv, q, failures):
    c = _case("anonymous-thp")
    r = compare.build_row(c, mv, failures, q, failures, [], compare.qemu_plan(c), None,
                          "qemu-system-x86_64: something new")
    assert r["unexplained"]
    doc = compare.summary([r], "venue", "ch")
    assert doc["unexplained"] == ["anonymous-thp"]
    assert "UNEXPLAINED" in compare.render_table(doc)
    assert "&#10007;" in compare.render_html(doc)


def test_new_failure_in_an_explained_case_is_unexplained():
    """An entry explains its own failure line only: a second, new failure in the same case
    still fails the run, and so does the explained line in a case the entry is not about."""
    c = _case("anonymous")
    plan = compare.qemu_plan(c)
    hg = "zone mem0: VmFlags has 'hg', which it must not"
    new = "zone mem0: KernelPageSize 2048 kB, expected 4 kB"
    r = compare.build_row(c, "pass", [], "fail", [hg, new], [], plan, None)
    assert r["unexplained"] == [new] and "qemu-thp-always" in r["explanation"]
    assert compare.summary([r], "venue", "ch")["unexplained"] == ["anonymous"]
    # SRAT without --numa is QEMU's answer to maxmem; in a case without hotplug it is a bug.
    srat = "SRAT or SLIT present without --numa"
    r = compare.build_row(_case("acpi-hotplug"), "pass", [], "fail", [srat], [],
                          compare.qemu_plan(_case("acpi-hotplug")), None)
    assert not r["unexplained"] and "qemu-srat-for-hotplug" in r["explanation"]
    r = compare.build_row(c, "pass", [], "fail", [srat], [], plan, None)
    assert r["unexplained"] == [srat]
    # The same for a refusal: QEMU's SLIT error explains only a case that gives distances.
    slit = ("qemu-system-x86_64: At least one asymmetrical pair of distances is given, please "
            "provide distances for both directions of all node pairs.")
    r = compare.build_row(c, "pass", [], "refused", [], [], plan, None, slit)
    assert r["unexplained"]


def test_valid_case_memvisor_refuses_is_unexplained_even_if_qemu_refuses_too():
    c = _case("anonymous")
    r = compare.build_row(c, "refused", [], "refused", [], [], compare.qemu_plan(c), None)
    assert r["unexplained"] and "memvisor refuses" in r["unexplained"][0]


def test_every_platform_check_and_refusal_entry_says_which_cases_it_explains():
    for d in DIFFERENCES:
        assert (d.applies is not None) == (d.kind in ("platform", "check", "refusal")), d.id


MISSING = ("qemu-system-x86_64: The distance between node 0 and 2 is missing, at least one "
           "distance value between each nodes should be provided.")


@pytest.mark.parametrize("name,q,failure,entry", [
    ("val-numa-distances-1@30", "refused", MISSING, "qemu-numa-distance-every-pair"),
    ("numa-spec-distances", "refused", MISSING, None),        # every pair is given there
    ("val-numa-memory_zones-mem1", "fail",
     "SRAT node 0: 0x3fa0000 bytes of boot RAM, expected 0x4000000", "qemu-ram-in-node-order"),
    ("numa-slit-default", "fail",                              # zones already in node order
     "SRAT node 0: 0x3fa0000 bytes of boot RAM, expected 0x4000000", None),
    ("pw-mem-7e803d", "fail", "zone mem0: 131072 kB resident, prefault promises 196608 kB",
     "qemu-virtio-mem-prealloc-on-plug"),
    ("prefault-anon", "fail", "zone mem0: 0 kB resident, prefault promises 131072 kB", None),
    # Linux's report of the same SRAT, and QEMU's DIMM unplug (ACPI sequences only).
    ("linux-virtio-mem-numa", "fail",
     "node 1: hotpluggable ranges ['0x230000000'], expected ['0x20000000']",
     "qemu-srat-device-memory"),
    ("linux-numa2", "fail", "node 1: hotpluggable ranges ['0x230000000'], expected []", None),
    ("linux-resize-acpi", "fail", "step resize-1024M: HTTP 204 (''), expected 400",
     "qemu-dimm-unplug"),
    ("linux-resize-vmem", "fail", "step resize-1024M: HTTP 204 (''), expected 400", None),
])
def test_entries_explain_their_own_cases_only(name, q, failure, entry):
    c = _case(name)
    plan = compare.qemu_plan(c)
    if q == "refused":
        r = compare.build_row(c, "pass", [], q, [], [], plan, None, failure)
    else:
        r = compare.build_row(c, "pass", [], q, [failure], [], plan, None)
    if entry:
        assert not r["unexplained"] and f"[{entry}]" in r["explanation"]
    else:
        assert r["unexplained"]


def test_memvisor_failure_is_unexplained_even_where_qemu_is_na():
    c = _case("files-mixed")
    plan = compare.qemu_plan(c)
    assert isinstance(plan, NotApplicable)
    r = compare.build_row(c, "pass", [], "n/a", [], [], plan, None)
    assert not r["unexplained"]
    r = compare.build_row(c, "fail", ["zone mem0: not in /proc/PID/numa_maps"], "n/a", [], [],
                          plan, None)
    assert r["unexplained"] and "memvisor fails" in r["unexplained"][0]


def test_backends_of_one_size_are_found_in_creation_order():
    """QEMU creates mem0's backend first; top-down mmap puts it above mem1's."""
    from conformance import qemu
    from memvisor.hoststate import Mapping
    c = _case("host-nodes")
    plan = compare.qemu_plan(c)
    assert isinstance(plan, QemuCommand)
    size = c.expect.zones[0].boot_size
    assert size == c.expect.zones[1].boot_size
    low, high = Mapping(0x7f0000000000, 0x7f0000000000 + size, "rw-p", ""), \
        Mapping(0x7f4000000000, 0x7f4000000000 + size, "rw-p", "")
    found = qemu.qemu_zones(plan)(c.expect, {}, [low, high])
    assert found["mem0"].mappings == [high] and found["mem1"].mappings == [low]

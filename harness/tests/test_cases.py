"""The conformance matrix: complete, pairwise-covering, small, with unique stable names."""
from __future__ import annotations

import re

import pytest

from conformance import cases, hostile, linux, resize
from memvisor import optionspec
from memvisor.oracle import RULES, Expectation, Rejection, evaluate
from memvisor.pairwise import allpairs, pairs_of

MiB, GiB = 1 << 20, 1 << 30


@pytest.fixture(scope="module")
def full() -> list[cases.Case]:
    return cases.generate("full")


@pytest.fixture(scope="module")
def quick() -> list[cases.Case]:
    return cases.generate("quick")


# ---- the generic pairwise generator --------------------------------------------------------

def test_allpairs_toy() -> None:
    params = {"a": [0, 1, 2], "b": ["x", "y"], "c": [None, "p", "q"], "d": [True, False]}

    def valid(r: dict) -> bool:          # c=q needs d; a=2 never with b=y
        return not (r["c"] == "q" and not r["d"]) and not (r["a"] == 2 and r["b"] == "y")
    pw = allpairs(params, valid)
    assert all(valid(r) for r in pw.rows)
    covered = set().union(*(pairs_of(r, params) for r in pw.rows))
    assert pw.valid_pairs <= covered
    assert pw.forbidden_pairs == {(("a", 2), ("b", "y")), (("c", "q"), ("d", False))}
    assert pw.forbidden_rows and not any(valid(r) for r in pw.forbidden_rows)
    assert len(pw.rows) < 3 * 3 * 2 * 2 / 2            # much smaller than the product
    cov = pw.coverage()
    assert cov["pairs_covered"] == cov["pairs_valid"] == cov["pairs_total"] - 2
    assert cov["values_covered"] == cov["values_total"] == 10


def test_allpairs_is_deterministic() -> None:
    params = {"a": [1, 2, 3], "b": [1, 2, 3], "c": [1, 2]}
    assert allpairs(params, lambda r: True).rows == allpairs(params, lambda r: True).rows


# ---- the matrix ------------------------------------------------------------------------------

def test_every_option_value_appears(full) -> None:
    cov = cases.coverage(full)["values"]
    assert cov["missing"] == [] and cov["covered"] == cov["total"]
    total = sum(len(optionspec.test_values(o)) for o in optionspec.options())
    assert cov["total"] == total


@pytest.mark.parametrize("which", ["memory", "zone"])
def test_pairwise_covers_every_valid_pair(full, which: str) -> None:
    pw = cases.memory_pairwise() if which == "memory" else cases.zone_pairwise()
    assert pw.coverage()["pairs_covered"] == len(pw.valid_pairs) > 0
    cov = cases.coverage(full)["pairwise"][which]
    assert cov["pairs_covered"] == cov["pairs_valid"]
    assert cov["values_covered"] == cov["values_total"]


def test_forbidden_pairs_are_rejection_cases(full) -> None:
    forbidden = [c for c in full if "pairwise-forbidden" in c.tags]
    assert forbidden and all(isinstance(c.expect, Rejection) for c in forbidden)
    assert all(isinstance(c.expect, Expectation) for c in full if "pairwise" in c.tags)


def test_names_unique_short_stable(full) -> None:
    names = [c.name for c in full]
    assert len(names) == len(set(names))
    for n in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,47}", n), n
    cases._full.cache_clear()
    cases.memory_pairwise.cache_clear()
    cases.zone_pairwise.cache_clear()
    assert [c.name for c in cases.generate("full")] == names


def test_configs_unique(full) -> None:
    """One case per configuration and guest: Linux cases may repeat a probe configuration."""
    for guest in ("probe", "linux"):
        keys = [(cases.config_key(c.config), c.config.kernel.name, c.config.cmdline)
                for c in full if c.guest == guest]
        assert len(keys) == len(set(keys)), guest


def test_every_case_boots_its_guest(full) -> None:
    """The probe holds after its report; Linux boots the built kernel with its initramfs and
    ends as the case says (end= on its command line), each kind of end at least once."""
    ends = set()
    for c in full:
        words = c.config.cmdline.split()
        if c.guest == "probe":
            assert c.config.kernel == cases.PROBE and c.config.kernel.name == "probe.elf"
            assert "hold=1" in words and c.end == "hold" and c.config.initramfs is None
        elif c.guest == "resize":
            assert c.config.kernel == resize.GUEST and c.valid and c.steps, c.name
            assert c.config.api_socket == resize.socket_path(c.name), c.name
        elif c.guest == "hostile":
            assert c.config.kernel == hostile.GUEST and c.valid, c.name
            assert bool(c.steps) == bool(c.config.api_socket) == (c.end == "hold"), c.name
            assert c.end in ("exit", "hold") and ("hold" in words) == (c.end == "hold"), c.name
        elif c.guest == "faults":   # conformance/faults.py: the resize guest, its own setup
            assert c.config.kernel == resize.GUEST and c.valid, c.name
        else:
            assert c.guest == "linux" and c.valid, c.name
            assert c.config.kernel in linux.KERNELS.values(), c.name
            if c.end == "shell":    # someone else's initramfs, run by typing into its shell
                assert c.config.initramfs == linux.FOREIGN_INITRAMFS, c.name
                assert "rdinit=/bin/sh" in words, c.name
            else:
                assert c.config.initramfs == linux.INITRAMFS and f"end={c.end}" in words, c.name
            ends.add((c.end, c.config.kernel.name))
    assert cases.CMDLINE.split().count("hold=1") == 1
    assert {e for e, _ in ends} == {"hold", "poweroff", "reboot", "panic", "watch", "shell"}
    assert ("shell", "vmlinux") in ends and ("shell", "vmlinuz") in ends
    assert ("poweroff", "vmlinux") in ends and ("poweroff", "vmlinuz") in ends


def test_expectations_are_the_oracles(full) -> None:
    facts = cases.testhost_facts()
    for c in full[::7]:
        assert evaluate(c.config, facts) == c.expect, c.name


def test_full_matrix_size(full) -> None:
    valid = [c for c in full if c.valid]
    assert 40 <= len(valid) <= 200
    assert len(full) - len(valid) <= 120


def test_sizes_are_small(full) -> None:
    """64-512 MiB per VM, hotplug areas included; 1 GiB only with 1 GiB huge pages."""
    for c in full:
        if not c.valid:
            continue
        e = c.expect
        total = e.boot_ram + sum(h.size for h in e.hotplug)
        if c.guest == "linux":      # Debian's kernel wants room: 512 MiB to 2 GiB
            assert 512 * MiB <= total <= 2 * GiB, c.name
        elif c.guest == "resize":   # grown in steps, as CH's own tests grow 512 MiB to 2 GiB
            assert 128 * MiB <= total <= 1536 * MiB, c.name
        elif c.guest == "faults":   # a 1 GiB prefault gives the signals their time
            assert total <= 1536 * MiB, c.name
        elif "hugetlb_1g" in e.backings:
            assert total <= GiB, c.name
        else:
            assert 64 * MiB <= total <= 512 * MiB, c.name


def test_every_rule_has_a_rejection_case(full) -> None:
    primary = {c.expect.rule for c in full if not c.valid}
    wanted = {r.name for r in RULES} - cases.HOST_DEPENDENT_RULES
    assert wanted <= primary, wanted - primary
    assert "parse" in primary


def test_every_backing_in_full(full) -> None:
    assert cases.coverage(full)["backings"]["missing"] == []


def test_quick_subset(quick, full) -> None:
    assert 15 <= len(quick) <= 25
    assert {c.name for c in quick} <= {c.name for c in full}
    backings = set().union(*(c.expect.backings for c in quick if c.valid))
    assert backings == {b.name for b in optionspec.backings()}
    assert any(c.valid and len(c.expect.numa) >= 3 for c in quick)
    assert any(c.valid and any(z.host_numa_node is not None for z in c.expect.zones)
               for c in quick)
    assert sum(not c.valid for c in quick) >= 3
    assert all("quick" in c.tags for c in quick)


def test_named_scenarios(full) -> None:
    by = {c.name: c for c in full}
    e = by["numa3-asym"].expect
    assert [e.numa[i].cpus for i in range(3)] == [(0,), (1, 2), (3,)]
    assert len({e.numa[i].boot_ram for i in range(3)}) == 3
    assert e.slit != tuple(zip(*e.slit))                        # asymmetric
    e = by["host-nodes"].expect
    assert [z.numa_policy for z in e.zones] == ["bind:0", "bind:1"]
    for name, backing in (("hugetlb-2m-zone", "hugetlb_2m"), ("hugetlb-1g-zone", "hugetlb_1g"),
                          ("file-shared", "file_shared"), ("dir-shared", "file_shared")):
        assert by[name].expect.backings == {backing}, name
    assert by["dir-shared"].expect.zones[0].file_is_dir
    assert by["hugetlb-2m-prefault"].expect.zones[0].prefault
    assert by["mergeable"].expect.zones[0].mergeable
    assert [h.kind for h in by["virtio-mem"].expect.hotplug] == ["virtio-mem"]
    assert [h.kind for h in by["acpi-hotplug"].expect.hotplug] == ["acpi-hotplug"]


def test_file_cases_prepare_their_files(full) -> None:
    for c in full:
        if c.guest == "faults":     # a tmpfs mounted, a file given data: faults.py's own setup
            continue
        paths = [kv.split("=", 1)[1] for z in c.config.zones for kv in z.split(",")
                 if kv.startswith("file=")]
        assert set(paths) == set(c.files), c.name
        if paths:
            assert len(c.setup) == len(set(paths)) and len(c.teardown) == len(set(paths))
    by = {c.name: c for c in full}
    assert by["file-shared"].setup == (
        f"rm -f {optionspec.ZONE_FILE} && truncate -s {128 * MiB} {optionspec.ZONE_FILE}",)
    assert by["dir-shared"].setup[0].endswith(f"mkdir -p {optionspec.ZONE_DIR}")


def test_assumptions_are_tagged(full) -> None:
    for c in full:
        tagged = {t.split(":", 1)[1] for t in c.tags if t.startswith("assumption:")}
        assert tagged == set(c.expect.assumptions), c.name
    assert "quick" not in {t for c in full for t in c.tags if c.expect.assumptions}


def test_generate_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError):
        cases.generate("everything")

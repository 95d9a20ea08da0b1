"""The oracle on hand-worked examples of the spec, its defaults, and every rejection rule."""
from __future__ import annotations

import pytest

from memvisor import optionspec
from memvisor.driver import VmConfig
from memvisor.oracle import (RULES, Expectation, HostFacts, Range, Rejection, evaluate,
                             layout_violations)

MiB, GiB = 1 << 20, 1 << 30

# A roomy host, so that the spec's 1G examples fit in its pools.
HOST = HostFacts(page_size=4096, default_hugepage_size=2 * MiB, hugepage_sizes=(2 * MiB, GiB),
                 free_hugepages={2 * MiB: {0: 1024, 1: 1024}, GiB: {0: 4, 1: 4}}, nodes=(0, 1),
                 directories=frozenset({"/tmp/dir"}))
NO_HUGETLB = HostFacts(default_hugepage_size=0, hugepage_sizes=(), nodes=(0,))


def ev(memory: str | None = "size=1G", zones=(), numa=(), cpus: str = "boot=1",
       balloon: str | None = None, host: HostFacts = HOST) -> Expectation | Rejection:
    return evaluate(VmConfig(memory=memory, zones=list(zones), numa=list(numa), cpus=cpus,
                             balloon=balloon), host)


def ok(*args, **kw) -> Expectation:
    e = ev(*args, **kw)
    assert isinstance(e, Expectation), e
    return e


def rejected(*args, **kw) -> Rejection:
    e = ev(*args, **kw)
    assert isinstance(e, Rejection), e
    return e


# ---- options.def / backings.def ------------------------------------------------------------

def test_definitions_parse() -> None:
    groups = {o.group for o in optionspec.options()}
    assert groups == {"MEMORY", "ZONE", "NUMA"}
    assert optionspec.option("MEMORY", "thp").default == "on"
    assert optionspec.option("MEMORY", "hotplug_method").values == ("acpi", "virtio-mem")
    names = [b.name for b in optionspec.backings()]
    assert len(names) == len(set(names)) >= 7
    assert optionspec.hugepage_sizes() == [2 * MiB, GiB]
    for o in optionspec.options():
        assert optionspec.test_values(o), o


# ---- the spec's examples, in document order --------------------------------------------------

def test_default_memory() -> None:
    """`[default: size=512M,thp=on]`"""
    e = ok(None)
    assert e.boot_ram == 512 * MiB
    z = e.zone("mem0")
    assert (z.backing, z.thp, z.shared, z.page_size) == ("anonymous_thp", True, False, 4096)
    assert "hg" in z.vmflags_present


def test_size_example() -> None:
    e = ok("size=1G")
    assert e.boot_ram == GiB and [z.zone for z in e.zones] == ["mem0"]
    assert e.hotplug == () and e.numa == {} and e.slit == ()


def test_mergeable_example() -> None:
    z = ok("size=1G,mergeable=on").zone("mem0")
    assert z.mergeable and "mg" in z.vmflags_present


def test_hotplug_method_acpi_example() -> None:
    assert ok("size=1G,hotplug_method=acpi").hotplug == ()


def test_hotplug_size_example() -> None:
    (h,) = ok("size=1G,hotplug_size=1G").hotplug
    assert (h.kind, h.size, h.zone) == ("acpi-hotplug", GiB, None)


def test_hotplugged_size_example() -> None:
    e = ok("size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=512M")
    (h,) = e.hotplug
    assert (h.kind, h.size, h.zone, h.plugged) == ("virtio-mem", GiB, "mem0", 512 * MiB)
    assert e.boot_ram == GiB and e.hotplugged_ram == 512 * MiB
    assert e.zone("mem0").hotplug_size == GiB
    assert e.virtio_devices == (24,)


def test_virtio_mem_device_per_zone() -> None:
    e = ok("size=0,hotplug_method=virtio-mem",
           ["id=a,size=1G,hotplug_size=1G", "id=b,size=1G", "id=c,size=1G,hotplug_size=512M"])
    assert e.virtio_devices == (24, 24)
    assert ok("size=1G,hotplug_size=1G").virtio_devices == ()     # ACPI: no virtio device
    assert ok("size=1G").virtio_devices == ()


def test_shared_example() -> None:
    z = ok("size=1G,shared=on").zone("mem0")
    assert (z.backing, z.shared, z.thp, z.mergeable) == ("shmem", True, False, False)
    assert {"hg", "mg"} <= z.vmflags_absent and "sh" in z.vmflags_present


def test_hugepages_example() -> None:
    z = ok("size=1G,hugepages=on,hugepage_size=2M").zone("mem0")
    assert (z.backing, z.shared, z.page_size, z.hugepages) == ("hugetlb_2m", True, 2 * MiB, 512)
    assert not z.thp and "ht" in z.vmflags_present


def test_hugepages_ignore_shared_off() -> None:
    """"If `hugepages=on` then the value of this field is ignored as huge pages always requires
    `MAP_SHARED`." """
    z = ok("size=1G,hugepages=on,shared=off").zone("mem0")
    assert z.shared and z.page_size == 2 * MiB


def test_prefault_example() -> None:
    z = ok("size=1G,prefault=on").zone("mem0")
    assert z.prefault and z.prefault_bytes == GiB


def test_thp_example() -> None:
    assert ok("size=1G,thp=on").zone("mem0").thp
    assert not ok("size=1G,thp=off").zone("mem0").thp
    assert ok("size=1G,thp=off").zone("mem0").backing == "anonymous"


def test_zone_examples() -> None:
    e = ok("size=0", ["id=mem0,size=1G"])
    assert e.boot_ram == GiB and e.zone("mem0").backing == "anonymous_thp"
    z = ok("size=0", ["id=mem0,size=1G,file=/foo/bar"]).zone("mem0")
    assert (z.backing, z.shared, z.thp, z.file, z.file_is_dir) == ("file", False, False,
                                                                   "/foo/bar", False)
    assert ok("size=0", ["id=mem0,size=1G,shared=on"]).zone("mem0").backing == "shmem"
    z = ok("size=0", ["id=mem0,size=1G,hugepages=on,hugepage_size=2M"]).zone("mem0")
    assert (z.backing, z.hugepages) == ("hugetlb_2m", 512)
    z = ok("size=0", ["id=mem0,size=1G,host_numa_node=0"]).zone("mem0")
    assert z.numa_policy == "bind:0" and z.host_numa_node == 0
    assert ok("size=0", ["id=mem0,size=1G,prefault=on"]).zone("mem0").prefault


def test_zone_hotplug_examples() -> None:
    e = ok("size=0,hotplug_method=virtio-mem", ["id=mem0,size=1G,hotplug_size=1G"])
    assert [(h.kind, h.size, h.zone, h.plugged) for h in e.hotplug] == [
        ("virtio-mem", GiB, "mem0", 0)]
    e = ok("size=0,hotplug_method=virtio-mem",
           ["id=mem0,size=1G,hotplug_size=1G,hotplugged_size=512M"])
    assert e.hotplug[0].plugged == 512 * MiB and e.hotplugged_ram == 512 * MiB


def test_file_shared_and_directory() -> None:
    z = ok("size=0", ["id=mem0,size=1G,file=/tmp/dir,shared=on"]).zone("mem0")
    assert (z.backing, z.shared, z.file_is_dir) == ("file_shared", True, True)


def test_guest_numa_id_example() -> None:
    e = ok(None, numa=["guest_numa_id=0"])
    assert e.numa[0].boot_ram == 512 * MiB and e.numa[0].cpus == (0,)
    assert e.slit == ((10,),)
    assert "unassigned-zone-on-lowest-node" in e.assumptions


def test_cpus_example() -> None:
    """`--cpus boot=8 --numa guest_numa_id=0,cpus=[1-3,7] guest_numa_id=1,cpus=[0,4-6]`"""
    e = ok("size=1G", numa=["guest_numa_id=0,cpus=[1-3,7],memory_zones=mem0",
                            "guest_numa_id=1,cpus=[0,4-6]"], cpus="boot=8")
    assert e.numa[0].cpus == (1, 2, 3, 7) and e.numa[1].cpus == (0, 4, 5, 6)
    assert e.numa[0].boot_ram == GiB and e.numa[1].boot_ram == 0


def test_distances_example() -> None:
    e = ok("size=1G", numa=["guest_numa_id=0,distances=[1@15,2@25],memory_zones=mem0",
                            "guest_numa_id=1,distances=[0@15,2@20]",
                            "guest_numa_id=2,distances=[0@25,1@20]"])
    assert e.slit == ((10, 15, 25), (15, 10, 20), (25, 20, 10))


def test_memory_zones_example() -> None:
    e = ok("size=0", ["id=mem0,size=1G", "id=mem1,size=1G", "id=mem2,size=1G"],
           ["guest_numa_id=0,memory_zones=[mem0,mem2]", "guest_numa_id=1,memory_zones=mem1"])
    assert e.numa[0].zones == ("mem0", "mem2") and e.numa[0].boot_ram == 2 * GiB
    assert e.numa[1].zones == ("mem1",) and e.numa[1].boot_ram == GiB
    assert [z.guest_numa_id for z in e.zones] == [0, 1, 0]
    assert e.assumptions == ()


def test_zone_in_two_nodes_example() -> None:
    """"`--numa guest_numa_id=0,memory_zones=mem0 guest_numa_id=1,memory_zones=mem0`" """
    r = rejected("size=0", ["id=mem0,size=1G"],
                 ["guest_numa_id=0,memory_zones=mem0", "guest_numa_id=1,memory_zones=mem0"])
    assert (r.option, r.reason_keywords, r.rule) == ("--numa", ("mem0",), "numa_zone_single_node")


def test_options_the_spec_has_but_memvisor_does_not() -> None:
    """sgx_epc_sections and pci_segments are not in options.def: rejected as unknown."""
    r = rejected("size=1G", numa=["guest_numa_id=0,sgx_epc_sections=epc1"])
    assert (r.option, r.reason_keywords) == ("--numa", ("sgx_epc_sections",))
    r = rejected("size=0", ["size=16G,host_numa_node=0,id=mem0"],
                 ["guest_numa_id=0,memory_zones=mem0,pci_segments=[0]"])
    assert (r.option, r.rule) == ("--numa", "parse")


# ---- defaults: SLIT, CPUs, hotplug placement -------------------------------------------------

def _two(numa: list[str], cpus: str = "boot=2") -> Expectation:
    return ok("size=0", ["id=mem0,size=64M", "id=mem1,size=64M"], numa, cpus)


def test_slit_default_20() -> None:
    e = _two(["guest_numa_id=0,memory_zones=mem0", "guest_numa_id=1,memory_zones=mem1"])
    assert e.slit == ((10, 20), (20, 10))


def test_slit_reverse_and_asymmetric() -> None:
    e = ok("size=0", ["id=a,size=64M", "id=b,size=64M", "id=c,size=64M"],
           ["guest_numa_id=0,distances=[1@15,2@25],memory_zones=a",
            "guest_numa_id=1,distances=[2@30],memory_zones=b",
            "guest_numa_id=2,distances=[0@40],memory_zones=c"])
    assert e.slit == ((10, 15, 25), (15, 10, 30), (40, 30, 10))


def test_slit_self_distance_is_10() -> None:
    e = _two(["guest_numa_id=0,distances=[0@30],memory_zones=mem0",
              "guest_numa_id=1,memory_zones=mem1"])
    assert e.slit[0][0] == 10 and "self-distance-is-10" in e.assumptions


def test_unlisted_cpus_go_to_lowest_id_not_first_listed() -> None:
    e = _two(["guest_numa_id=1,cpus=0,memory_zones=mem1", "guest_numa_id=0,memory_zones=mem0"],
             "boot=3")
    assert e.numa[1].cpus == (0,) and e.numa[0].cpus == (1, 2)


def test_hotpluggable_cpus_have_nodes() -> None:
    e = _two(["guest_numa_id=0,memory_zones=mem0", "guest_numa_id=1,cpus=[2-3],memory_zones=mem1"],
             "boot=2,max=4")
    assert e.numa[0].cpus == (0, 1) and e.numa[1].cpus == (2, 3)
    assert (e.boot_cpus, e.max_cpus) == (2, 4)


def test_no_numa_no_nodes() -> None:
    e = ok("size=0", ["id=mem0,size=64M"])
    assert e.numa == {} and e.slit == () and e.zones[0].guest_numa_id is None


def test_virtio_mem_regions_follow_their_zones_nodes() -> None:
    e = ok("size=0,hotplug_method=virtio-mem",
           ["id=mem0,size=128M,hotplug_size=128M", "id=mem1,size=128M,hotplug_size=256M"],
           ["guest_numa_id=0,memory_zones=mem1", "guest_numa_id=1,memory_zones=mem0"])
    assert [(h.zone, h.guest_numa_id) for h in e.hotplug] == [("mem0", 1), ("mem1", 0)]
    assert e.numa[0].hotplug[0].size == 256 * MiB


def test_acpi_area_first_then_virtio_mem_never_both_for_mem0() -> None:
    (h,) = ok("size=128M,hotplug_method=virtio-mem,hotplug_size=128M").hotplug
    assert h.kind == "virtio-mem"
    (h,) = ok("size=128M,hotplug_size=128M").hotplug
    assert h.kind == "acpi-hotplug"


# ---- host-side mapping details --------------------------------------------------------------

def test_thp_only_on_private_anonymous() -> None:
    e = ok("size=0,thp=on", ["id=a,size=64M", "id=b,size=64M,shared=on",
                             "id=c,size=64M,file=/tmp/f", "id=d,size=64M,hugepages=on"])
    assert [z.thp for z in e.zones] == [True, False, False, False]
    assert [z.backing for z in e.zones] == ["anonymous_thp", "shmem", "file", "hugetlb_2m"]


def test_mergeable_applies_to_every_zone_but_shows_on_private_only() -> None:
    e = ok("size=0,mergeable=on", ["id=a,size=64M", "id=b,size=64M,shared=on",
                                   "id=c,size=64M,file=/tmp/f"])
    assert [z.mergeable for z in e.zones] == [True, False, True]


def test_hugepages_counted_with_hotplugged_and_default_size() -> None:
    z = ok("size=128M,hugepages=on,hotplug_method=virtio-mem,hotplug_size=128M,"
           "hotplugged_size=64M").zone("mem0")
    assert (z.page_size, z.hugepages, z.prefault_bytes) == (2 * MiB, 96, 0)
    z = ok("size=0", ["id=m,size=1G,hugepages=on,hugepage_size=1G,host_numa_node=1"]).zone("m")
    assert (z.backing, z.hugepages, z.numa_policy) == ("hugetlb_1g", 1, "bind:1")


def test_host_facts_probe(tmp_path) -> None:
    for node, free2m, free1g in ((0, 256, 1), (1, 200, 0)):
        for size, free in ((2048, free2m), (1048576, free1g)):
            d = tmp_path / f"sys/devices/system/node/node{node}/hugepages/hugepages-{size}kB"
            d.mkdir(parents=True)
            (d / "free_hugepages").write_text(f"{free}\n")
    for size in (2048, 1048576):
        (tmp_path / f"sys/kernel/mm/hugepages/hugepages-{size}kB").mkdir(parents=True)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemTotal: 1 kB\nHugepagesize:       2048 kB\n")
    h = HostFacts.probe(tmp_path)
    assert h.nodes == (0, 1) and h.hugepage_sizes == (2 * MiB, GiB)
    assert h.default_hugepage_size == 2 * MiB
    assert (h.free_on(2 * MiB, 1), h.free_total(2 * MiB), h.free_total(GiB)) == (200, 456, 1)


def test_balloon_accepted_below_ram() -> None:
    assert ok("size=256M", balloon="size=64M").balloon_size == 64 * MiB


def test_balloon_device() -> None:
    assert ok("size=256M", balloon="size=0").virtio_devices == (5,)
    assert ok("size=256M").virtio_devices == ()
    e = ok("size=256M,hotplug_method=virtio-mem,hotplug_size=1G", balloon="size=64M")
    assert e.virtio_devices == (24, 5)


# ---- every rule, once ----------------------------------------------------------------------

VM = "size=0,hotplug_method=virtio-mem"
Z2 = ["id=mem0,size=64M", "id=mem1,size=64M"]
RULE_EXAMPLES: dict[str, tuple[dict, str, tuple[str, ...]]] = {
    "memory_size_mandatory": (dict(memory="mergeable=on"), "--memory", ("size",)),
    "memory_size_zero_needs_zones": (dict(memory="size=0"), "--memory", ("size",)),
    "zones_need_memory_size_zero": (dict(memory=None, zones=["id=a,size=1G"]),
                                    "--memory-zone", ("size",)),
    "zone_id_mandatory": (dict(memory="size=0", zones=["size=1G"]), "--memory-zone", ("id",)),
    "zone_size_mandatory": (dict(memory="size=0", zones=["id=a"]), "--memory-zone", ("size",)),
    "zone_id_unique": (dict(memory="size=0", zones=["id=a,size=1G", "id=a,size=1G"]),
                       "--memory-zone", ("a",)),
    "zone_size_not_zero": (dict(memory="size=0", zones=["id=a,size=1G", "id=b,size=0"]),
                           "--memory-zone", ("size",)),
    "memory_hotplug_size_not_zero": (dict(memory="size=1G,hotplug_size=0"), "--memory",
                                     ("hotplug_size",)),
    "memory_hotplugged_size_not_zero": (
        dict(memory="size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=0"),
        "--memory", ("hotplugged_size",)),
    "memory_hotplugged_needs_hotplug_size": (
        dict(memory="size=1G,hotplug_method=virtio-mem,hotplugged_size=512M"), "--memory",
        ("hotplugged_size",)),
    "memory_hotplugged_needs_virtio_mem": (
        dict(memory="size=1G,hotplug_size=1G,hotplugged_size=512M"), "--memory",
        ("hotplugged_size",)),
    "memory_hotplugged_within_hotplug_size": (
        dict(memory="size=1G,hotplug_method=virtio-mem,hotplug_size=512M,hotplugged_size=1G"),
        "--memory", ("hotplugged_size",)),
    "memory_virtio_mem_needs_size": (dict(memory=VM + ",hotplug_size=1G", zones=["id=a,size=1G"]),
                                     "--memory", ("hotplug_size",)),
    "zone_hotplug_size_not_zero": (dict(memory=VM, zones=["id=a,size=1G,hotplug_size=0"]),
                                   "--memory-zone", ("hotplug_size",)),
    "zone_hotplugged_needs_virtio_mem": (
        dict(memory="size=0", zones=["id=a,size=1G,hotplug_size=1G,hotplugged_size=512M"]),
        "--memory-zone", ("hotplugged_size",)),
    "zone_hotplug_needs_virtio_mem": (dict(memory="size=0", zones=["id=a,size=1G,hotplug_size=1G"]),
                                      "--memory-zone", ("hotplug_size",)),
    "zone_hotplugged_size_not_zero": (
        dict(memory=VM, zones=["id=a,size=1G,hotplug_size=1G,hotplugged_size=0"]),
        "--memory-zone", ("hotplugged_size",)),
    "zone_hotplugged_needs_hotplug_size": (
        dict(memory=VM, zones=["id=a,size=1G,hotplugged_size=512M"]), "--memory-zone",
        ("hotplugged_size",)),
    "zone_hotplugged_within_hotplug_size": (
        dict(memory=VM, zones=["id=a,size=1G,hotplug_size=512M,hotplugged_size=1G"]),
        "--memory-zone", ("hotplugged_size",)),
    "memory_hugepage_size_needs_hugepages": (dict(memory="size=1G,hugepage_size=2M"),
                                             "--memory", ("hugepage_size",)),
    "memory_hugepage_size_power_of_two": (dict(memory="size=1G,hugepages=on,hugepage_size=3M"),
                                          "--memory", ("hugepage_size",)),
    "memory_hugepage_size_offered": (dict(memory="size=1G,hugepages=on,hugepage_size=16G"),
                                     "--memory", ("hugepage_size",)),
    "zone_hugepage_size_needs_hugepages": (
        dict(memory="size=0", zones=["id=a,size=1G,hugepage_size=2M"]), "--memory-zone",
        ("hugepage_size",)),
    "zone_hugepage_size_power_of_two": (
        dict(memory="size=0", zones=["id=a,size=1G,hugepages=on,hugepage_size=6M"]),
        "--memory-zone", ("hugepage_size",)),
    "zone_hugepage_size_offered": (
        dict(memory="size=0", zones=["id=a,size=1G,hugepages=on,hugepage_size=4M"]),
        "--memory-zone", ("hugepage_size",)),
    "hugepages_need_host_support": (dict(memory="size=1G,hugepages=on", host=NO_HUGETLB),
                                    "--memory", ("hugepages",)),
    "zone_file_excludes_hugepages": (
        dict(memory="size=0", zones=["id=a,size=1G,file=/tmp/f,hugepages=on"]),
        "--memory-zone", ("file",)),
    "zone_shared_file_not_bound": (
        dict(memory="size=0", zones=["id=a,size=1G,file=/tmp/f,shared=on,host_numa_node=0"]),
        "--memory-zone", ("host_numa_node", "shared")),
    "memory_sizes_page_multiple": (dict(memory="size=1025M,hugepages=on"), "--memory",
                                   ("size",)),
    "zone_sizes_page_multiple": (
        dict(memory=VM, zones=["id=a,size=1G,hugepages=on,hugepage_size=1G",
                               "id=b,size=2G,hugepages=on,hugepage_size=1G,hotplug_size=1536M"]),
        "--memory-zone", ("hotplug_size",)),
    "virtio_mem_region_aligned": (dict(memory=VM, zones=["id=a,size=1G,hotplug_size=100M"]),
                                  "--memory-zone", ("hotplug_size",)),
    "virtio_mem_plugged_blocks": (
        dict(memory="size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=4K"),
        "--memory", ("hotplugged_size",)),
    "zone_host_numa_node_present": (dict(memory="size=0", zones=["id=a,size=1G,host_numa_node=7"]),
                                    "--memory-zone", ("host_numa_node",)),
    "numa_id_mandatory": (dict(numa=["cpus=0"]), "--numa", ("guest_numa_id",)),
    "numa_id_unique": (dict(numa=["guest_numa_id=0", "guest_numa_id=0"]), "--numa", ("0",)),
    "numa_ids_dense": (dict(numa=["guest_numa_id=1"]), "--numa", ("guest_numa_id",)),
    "numa_zone_exists": (dict(numa=["guest_numa_id=0,memory_zones=mem1"]), "--numa", ("mem1",)),
    "numa_zone_single_node": (dict(memory="size=0", zones=Z2,
                                   numa=["guest_numa_id=0,memory_zones=[mem0,mem1]",
                                         "guest_numa_id=1,memory_zones=mem1"]),
                              "--numa", ("mem1",)),
    "numa_distance_destination_exists": (dict(numa=["guest_numa_id=0,distances=[3@20]"]),
                                         "--numa", ("3",)),
    "numa_distance_destination_once": (
        dict(numa=["guest_numa_id=0,distances=[1@20,1@30]", "guest_numa_id=1"]), "--numa",
        ("1",)),
    "numa_cpu_single_node": (dict(numa=["guest_numa_id=0,cpus=[0-3]", "guest_numa_id=1,cpus=3"],
                                  cpus="boot=4"), "--numa", ("3",)),
    "numa_cpu_exists": (dict(numa=["guest_numa_id=0,cpus=[0-4]"], cpus="boot=2,max=4"),
                        "--numa", ("4",)),
    "cpus_counts": (dict(cpus="boot=0"), "--cpus", ("boot",)),
    "layout_boot_ram_minimum": (dict(memory="size=0", zones=["id=a,size=1M"]), "--memory-zone",
                                ("size",)),
    "layout_address_space": (dict(memory="size=2T"), "--memory", ("size",)),
    "hugepage_pool_sufficient": (
        dict(memory="size=0", zones=["id=a,size=4G,hugepages=on,hugepage_size=1G,host_numa_node=0",
                                     "id=b,size=1G,hugepages=on,hugepage_size=1G,"
                                     "host_numa_node=0"]),
        "--memory-zone", ("huge",)),
    "balloon_smaller_than_ram": (dict(memory="size=1G", balloon="size=1G"), "--balloon",
                                 ("size",)),
}


def test_every_rule_has_an_example() -> None:
    assert set(RULE_EXAMPLES) == {r.name for r in RULES}


@pytest.mark.parametrize("name", list(RULE_EXAMPLES))
def test_rule(name: str) -> None:
    kwargs, option, keywords = RULE_EXAMPLES[name]
    r = rejected(**kwargs)
    assert (r.rule, r.option, r.reason_keywords) == (name, option, keywords)


def test_rules_document_their_source() -> None:
    for r in RULES:
        assert r.doc.strip(), r.name
        if r.assumption:
            assert any(w in r.doc for w in ("silent", "Assumed", "assume")), r.name
        else:
            assert '"' in r.doc, f"{r.name}: quote the sentence the rule comes from"


def test_pool_counts_all_zones_of_a_size_per_node_and_in_total() -> None:
    host = HostFacts(free_hugepages={2 * MiB: {0: 100, 1: 100}}, nodes=(0, 1))
    two = ["id=a,size=150M,hugepages=on,host_numa_node=0", "id=b,size=150M,hugepages=on"]
    assert isinstance(ev("size=0", two, host=host), Expectation)        # 75 on 0, 150 total
    r = rejected("size=0", two + ["id=c,size=60M,hugepages=on,host_numa_node=0"], host=host)
    assert (r.option, r.rule) == ("--memory-zone", "hugepage_pool_sufficient")  # 105 on node 0
    r = rejected("size=0", two + ["id=c,size=120M,hugepages=on"], host=host)    # 210 > 200
    assert r.rule == "hugepage_pool_sufficient"
    r = rejected("size=402M,hugepages=on", host=host)
    assert (r.option, r.reason_keywords) == ("--memory", ("huge",))


def test_balloon_counts_hotplugged_memory() -> None:
    cfg = "size=128M,hotplug_method=virtio-mem,hotplug_size=128M,hotplugged_size=64M"
    assert isinstance(ev(cfg, balloon="size=160M"), Expectation)
    assert rejected(cfg, balloon="size=192M").rule == "balloon_smaller_than_ram"


def test_several_violations_give_alternatives() -> None:
    r = rejected("size=0", ["id=a,size=1G,hotplug_size=1G,hotplugged_size=512M"])
    assert r.option == "--memory-zone"
    assert ("--memory-zone", ("hotplug_size",)) in r.alternatives
    assert r.matches("memvisor: --memory-zone: hotplug_size needs hotplug_method=virtio-mem")


def test_parse_errors() -> None:
    assert rejected("size=1G,foo=1").reason_keywords == ("foo",)
    assert rejected("size=1X").reason_keywords == ("size",)
    assert rejected("size=1G,thp=maybe").reason_keywords == ("thp",)
    r = rejected("size=1G", numa=["guest_numa_id=0,cpus=[3-1]"])
    assert (r.option, r.reason_keywords) == ("--numa", ("cpus",))
    assert rejected(balloon="size=lots").option == "--balloon"
    assert ok("size=1G,mergeable=true,thp=false").zone("mem0").backing == "anonymous"


def test_assumption_only_when_no_spec_rule_broken() -> None:
    assert rejected("size=0", ["id=a"]).assumptions == ()           # size missing + boot RAM 0
    assert rejected("size=1M").assumptions == ("layout_boot_ram_minimum",)


# ---- Rejection.matches and layout invariants -------------------------------------------------

def test_rejection_matches() -> None:
    r = Rejection("--memory-zone", ("hotplug_size",), "x")
    assert r.matches("memvisor: --memory-zone: hotplug_size requires hotplug_method=virtio-mem\n")
    assert r.matches("noise\nmemvisor: --memory-zone: HOTPLUG_SIZE bad")
    assert not r.matches("memvisor: --memory: hotplug_size requires virtio-mem")
    assert not r.matches("memvisor: --memory-zone: size bad")
    assert not r.matches("")


def _layout_case() -> Expectation:
    return ok("size=0,hotplug_size=256M", ["id=a,size=3G", "id=b,size=2G"])


def test_layout_good() -> None:
    e = _layout_case()
    ranges = [Range("ram", 0, 3 * GiB, "a"), Range("ram", 4 * GiB, 2 * GiB, "b"),
              Range("acpi-hotplug", 6 * GiB, 256 * MiB)]
    assert layout_violations(e, ranges) == []
    split = [Range("ram", 0, 2 * GiB, "a"), Range("ram", 2 * GiB, GiB, "b"),
             Range("ram", 4 * GiB, GiB, "b"), Range("acpi-hotplug", 5 * GiB, 256 * MiB)]
    e2 = ok("size=0,hotplug_size=256M", ["id=a,size=2G", "id=b,size=2G"])
    assert layout_violations(e2, split) == []


@pytest.mark.parametrize("ranges,fragment", [
    ([("ram", 0, 3 * GiB + 4096, "a"), ("ram", 5 * GiB, 2 * GiB - 4096, "b"),
      ("acpi-hotplug", 8 * GiB, 256 * MiB, None)], "MMIO hole"),
    ([("ram", 0, 2 * GiB, "b"), ("ram", 2 * GiB, GiB, "a"), ("ram", 4 * GiB, 2 * GiB, "a"),
      ("acpi-hotplug", 6 * GiB, 256 * MiB, None)], "zone"),
    ([("ram", 0, 3 * GiB, "a"), ("ram", 4 * GiB, 2 * GiB, "b"),
      ("acpi-hotplug", 6 * GiB + 4096, 256 * MiB, None)], "128 MiB"),
    ([("ram", 0, 3 * GiB, "a"), ("ram", 4 * GiB, 2 * GiB, "b"),
      ("acpi-hotplug", 5 * GiB, 256 * MiB, None)], "overlaps"),
    ([("ram", 0, 3 * GiB, "a"), ("ram", 4 * GiB, 2 * GiB, "b")], "hotplug areas"),
    ([("ram", 4096, 3 * GiB - 4096, "a"), ("ram", 4 * GiB, 2 * GiB + 4096, "b"),
      ("acpi-hotplug", 8 * GiB, 256 * MiB, None)], "starts at"),
])
def test_layout_bad(ranges, fragment: str) -> None:
    found = layout_violations(_layout_case(), [Range(*r) for r in ranges])
    assert any(fragment in v for v in found), found

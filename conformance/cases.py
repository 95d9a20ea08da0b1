"""The conformance matrix: configurations to boot (or to see rejected) and what each must give.

    generate(mode) -> list[Case]      mode "full": the whole matrix; "quick": ~20 for make test
    coverage(cases) -> dict           option values, pairs, backings and rules covered

The matrix has four parts, each case tagged with its part:
  value      every value of every --memory, --memory-zone and --numa option at least once
             (values from optionspec.test_values, i.e. from options.def);
  pairwise   all pairs of --memory option values, and of --memory-zone option values, among
             valid configurations (pairwise.allpairs with the oracle as the constraint);
             the forbidden pairs are kept as rejection cases ("pairwise-forbidden");
  scenario   named configurations: NUMA topologies, host nodes, files, huge pages, hotplug;
  rejection  one configuration per rule of oracle.RULES, plus syntax errors.
Expectations come from the oracle for the test host (testhost_facts). Names are short and
stable: fixed for values, scenarios and rejections, a digest of the configuration for pairwise
rows. Cases whose expectation rests on an assumption where the spec is silent are tagged
"assumption:<name>".
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from memvisor import optionspec
from memvisor.driver import BUILD, VmConfig
from memvisor.optionspec import ZONE_DIR, ZONE_FILE, split_options
from memvisor.oracle import Expectation, HostFacts, Rejection, RULES, evaluate
from memvisor.pairwise import Pairwise, allpairs
from memvisor.sizes import parse_size

from . import faults, hostile, linux, resize

PROBE = BUILD / "guests" / "probe.elf"
CMDLINE = "hold=1"        # the probe prints its report, then halts until the harness stops it
ZONE_FILE2 = "/tmp/memvisor-zone1.img"
MiB, GiB = 1 << 20, 1 << 30

# Rules that no configuration can break on the test host (it offers huge pages).
HOST_DEPENDENT_RULES = frozenset({"hugepages_need_host_support"})


@dataclass
class Case:
    name: str
    config: VmConfig
    expect: Expectation | Rejection
    tags: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()       # shell commands inside the test host, before the VMM
    teardown: tuple[str, ...] = ()    # after it
    files: tuple[str, ...] = ()       # paths whose state the runner records afterwards
    guest: str = "probe"              # "probe", "linux" (conformance/linux.py), "resize"
                                      # (conformance/resize.py), "hostile" (hostile.py) or
                                      # "faults" (faults.py)
    end: str = "hold"                 # how the guest ends: hold (SIGTERM after the report), exit
                                      # (the exit port: hostile cases) or,
                                      # for Linux, poweroff, reboot, panic or watch (resizes)
    steps: tuple[dict, ...] = ()      # resize sequences: the API calls (conformance/resize.py)

    @property
    def valid(self) -> bool:
        return isinstance(self.expect, Expectation)


def testhost_facts() -> HostFacts:
    """ci/testhost's defaults: 2 nodes, 4 KiB pages, 512 x 2M and 2 x 1G split over the nodes."""
    return HostFacts(page_size=4096, default_hugepage_size=2 * MiB,
                     hugepage_sizes=(2 * MiB, 1 * GiB),
                     free_hugepages={2 * MiB: {0: 256, 1: 256}, 1 * GiB: {0: 1, 1: 1}},
                     nodes=(0, 1),
                     directories=frozenset({ZONE_DIR, "/tmp", "/dev/shm", "/dev/hugepages"}))


# ---------------------------------------------------------------------------------------------
# Building cases

def vm(memory: str | None, zones: tuple[str, ...] | list[str] = (),
       numa: tuple[str, ...] | list[str] = (), cpus: str = "boot=1",
       balloon: str | None = None) -> VmConfig:
    return VmConfig(memory=memory, zones=list(zones), numa=list(numa), cpus=cpus, kernel=PROBE,
                    cmdline=CMDLINE, balloon=balloon)


def config_key(cfg: VmConfig) -> str:
    """The configuration without machine-dependent paths (the kernel): names and dedup."""
    return json.dumps([cfg.memory, cfg.zones, cfg.numa, cfg.cpus, cfg.balloon])


@lru_cache(maxsize=None)
def _evaluate(key: str) -> Expectation | Rejection:
    memory, zones, numa, cpus, balloon = json.loads(key)
    return evaluate(vm(memory, zones, numa, cpus, balloon), testhost_facts())


def expect(cfg: VmConfig) -> Expectation | Rejection:
    return _evaluate(config_key(cfg))


def _kv(text: str) -> dict[str, str]:
    return dict(split_options(text))


def _file_steps(cfg: VmConfig) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Create each zone's backing file (sized for its mapping) or empty directory."""
    setup, teardown, files = [], [], []
    dirs = testhost_facts().directories
    for z in cfg.zones:
        kv = _kv(z)
        path = kv.get("file")
        if not path or path in files:
            continue
        files.append(path)
        if path in dirs:
            setup.append(f"rm -rf {path} && mkdir -p {path}")
            teardown.append(f"rm -rf {path}")
        else:
            try:
                size = parse_size(kv.get("size", "0")) + parse_size(kv.get("hotplug_size", "0"))
            except ValueError:
                size = 0
            setup.append(f"rm -f {path} && truncate -s {size} {path}")
            teardown.append(f"rm -f {path}")
    return tuple(setup), tuple(teardown), tuple(files)


def make_case(name: str, cfg: VmConfig, *tags: str) -> Case:
    exp = expect(cfg)
    t = list(tags)
    if isinstance(exp, Expectation):
        t.append("valid")
        t += [f"backing:{b}" for b in sorted(exp.backings)]
        if exp.numa:
            t.append("numa")
    else:
        t += ["rejection", f"rule:{exp.rule}"]
    t += [f"assumption:{a}" for a in exp.assumptions]
    setup, teardown, files = _file_steps(cfg)
    return Case(name, cfg, exp, tuple(dict.fromkeys(t)), setup, teardown, files)


def _slug(text: str) -> str:
    label = {ZONE_FILE: "file", ZONE_DIR: "dir"}.get(text, text)
    return re.sub(r"[^A-Za-z0-9.@-]+", "_", label).strip("_") or "x"


def _digest(cfg: VmConfig) -> str:
    return hashlib.sha1(config_key(cfg).encode()).hexdigest()[:6]


# ---------------------------------------------------------------------------------------------
# (a) every value of every option

def _join(d: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in d.items())


def _memory_value(name: str, value: str) -> VmConfig:
    mem = {"size": "128M"}
    zones: list[str] = []
    if name == "hugepage_size":
        mem["hugepages"] = "on"
        mem["size"] = "1G" if parse_size(value) > 128 * MiB else "128M"
    if name == "hotplugged_size":
        mem.update(hotplug_method="virtio-mem", hotplug_size="256M")
    if name == "size" and value == "0":
        zones = ["id=mem0,size=128M"]
    mem[name] = value
    return vm(_join(mem), zones)


def _zone_value(name: str, value: str) -> VmConfig:
    mem = {"size": "0"}
    zone = {"id": "mem0", "size": "128M"}
    if name == "hugepage_size":
        zone["hugepages"] = "on"
        zone["size"] = "1G" if parse_size(value) > 128 * MiB else "128M"
    if name in ("hotplug_size", "hotplugged_size"):
        mem["hotplug_method"] = "virtio-mem"
    if name == "hotplugged_size":
        zone["hotplug_size"] = "256M"
    zone[name] = value
    return vm(_join(mem), [_join(zone)])


_TWO = ("id=mem0,size=64M", "id=mem1,size=64M")
_THREE = _TWO + ("id=mem2,size=64M",)


def _numa_value(name: str, value: str) -> VmConfig:
    """A small topology in which `value` of --numa `name` is visible to the guest."""
    if name == "guest_numa_id":
        nodes = {"0": ["guest_numa_id=0,memory_zones=[mem0,mem1]"],
                 "1": ["guest_numa_id=1,memory_zones=mem1", "guest_numa_id=0,memory_zones=mem0"],
                 "2": ["guest_numa_id=2,memory_zones=mem1", "guest_numa_id=0,memory_zones=mem0",
                       "guest_numa_id=1"]}[value]
        return vm("size=0", _TWO, nodes)
    if name == "cpus":
        return vm("size=0", _TWO, ["guest_numa_id=0,memory_zones=mem0",
                                   f"guest_numa_id=1,cpus={value},memory_zones=mem1"], "boot=4")
    if name == "distances":
        return vm("size=0", _THREE, [f"guest_numa_id=0,distances={value},memory_zones=mem0",
                                     "guest_numa_id=1,memory_zones=mem1",
                                     "guest_numa_id=2,memory_zones=mem2"])
    if name == "memory_zones":
        rest = ",memory_zones=mem0" if value == "mem1" else ""
        return vm("size=0", _TWO, [f"guest_numa_id=0,memory_zones={value}",
                                   f"guest_numa_id=1{rest}"])
    raise KeyError(f"no --numa template for {name}")


def value_cases() -> list[Case]:
    out = []
    build = {"MEMORY": ("mem", _memory_value), "ZONE": ("zone", _zone_value),
             "NUMA": ("numa", _numa_value)}
    for opt in optionspec.options():
        short, fn = build[opt.group]
        for v in optionspec.test_values(opt):
            out.append(make_case(f"val-{short}-{opt.name}-{_slug(v)}", fn(opt.name, v),
                                 "value", opt.group.lower()))
    return out


# ---------------------------------------------------------------------------------------------
# (b) pairwise

def _domain(group: str, skip: tuple[str, ...] = ()) -> dict[str, list]:
    """Values per option for pairwise: BOOL/ENUM values; for sizes up to two small test values
    (no 0, nothing above 256M) and None (absent) when the option is optional; the test host's
    nodes for host_numa_node; no file, a file and a directory for file."""
    dom: dict[str, list] = {}
    for opt in optionspec.group_options(group):
        if opt.name in skip:
            continue
        vals = optionspec.test_values(opt)
        if opt.type == "SIZE":
            vals = [v for v in vals if v != "0" and parse_size(v) <= 256 * MiB]
            vals = vals[-2:] if opt.name != "size" else vals
        dom[opt.name] = ([None] if not opt.default else []) + vals
    return dom


def memory_params() -> dict[str, list]:
    d = _domain("MEMORY")
    d["size"] = [v for v in d["size"] if v is not None]
    return d


def zone_params() -> dict[str, list]:
    d = {k: v for k, v in _domain("ZONE", skip=("id",)).items()}
    d["size"] = [v for v in d["size"] if v is not None]
    # --memory options that change what a zone gets: virtio-mem for its hotplug_size, thp.
    d["memory.hotplug_method"] = list(optionspec.option("MEMORY", "hotplug_method").values)
    d["memory.thp"] = list(optionspec.option("MEMORY", "thp").values)
    return d


def _render(group: str, row: dict) -> str:
    """Options in options.def order; defaults and absent ones omitted (size always written)."""
    parts = []
    for opt in optionspec.group_options(group):
        v = row.get(opt.name)
        if v is None or (v == opt.default and opt.name != "size"):
            continue
        parts.append(f"{opt.name}={v}")
    return ",".join(parts)


def memory_row_config(row: dict) -> VmConfig:
    return vm(_render("MEMORY", row))


def zone_row_config(row: dict) -> VmConfig:
    mem = {"size": "0", "hotplug_method": row["memory.hotplug_method"], "thp": row["memory.thp"]}
    zone = {"id": "mem0", **{k: v for k, v in row.items() if not k.startswith("memory.")}}
    return vm(_render("MEMORY", mem), [_render("ZONE", zone)])


@lru_cache(maxsize=None)
def memory_pairwise() -> Pairwise:
    return allpairs(memory_params(), lambda r: expect(memory_row_config(r)).__class__
                    is Expectation)


@lru_cache(maxsize=None)
def zone_pairwise() -> Pairwise:
    return allpairs(zone_params(), lambda r: expect(zone_row_config(r)).__class__
                    is Expectation)


def pairwise_cases() -> list[Case]:
    out = []
    for short, pw, build in (("mem", memory_pairwise(), memory_row_config),
                             ("zone", zone_pairwise(), zone_row_config)):
        for row in pw.rows:
            cfg = build(row)
            out.append(make_case(f"pw-{short}-{_digest(cfg)}", cfg, "pairwise", short))
        for row in pw.forbidden_rows:
            cfg = build(row)
            out.append(make_case(f"pwx-{short}-{_digest(cfg)}", cfg, "pairwise-forbidden",
                                 short))
    return out


# ---------------------------------------------------------------------------------------------
# (c) named scenarios

def scenarios() -> dict[str, VmConfig]:
    numa2 = ["guest_numa_id=0,cpus=0,memory_zones=mem0", "guest_numa_id=1,cpus=1,memory_zones=mem1"]
    return {
        "default": vm(None),
        "anonymous": vm("size=128M,thp=off"),
        "anonymous-thp": vm("size=128M"),
        "shmem": vm("size=128M,shared=on"),
        "mergeable": vm("size=128M,mergeable=on"),
        "mergeable-zones": vm("size=0,mergeable=on",
                              ["id=mem0,size=64M", "id=mem1,size=64M,shared=on"]),
        "prefault-anon": vm("size=128M,prefault=on"),
        # NUMA: three zones of different sizes on three nodes, uneven CPUs, asymmetric SLIT
        # (0->1 given, 1->0 from the reverse, 2->0 differs from 0->2, 2->1 from the reverse).
        "numa3-asym": vm("size=0", ["id=mem0,size=64M", "id=mem1,size=128M", "id=mem2,size=256M"],
                         ["guest_numa_id=0,cpus=0,distances=[1@15,2@25],memory_zones=mem0",
                          "guest_numa_id=1,cpus=[1-2],distances=[2@30],memory_zones=mem1",
                          "guest_numa_id=2,cpus=3,distances=[0@40],memory_zones=mem2"], "boot=4"),
        "numa-spec-distances": vm("size=0", _THREE, [
            "guest_numa_id=0,distances=[1@15,2@25],memory_zones=mem0",
            "guest_numa_id=1,distances=[0@15,2@20],memory_zones=mem1",
            "guest_numa_id=2,distances=[0@25,1@20],memory_zones=mem2"]),
        "numa-spec-zones": vm("size=0", ["id=mem0,size=128M", "id=mem1,size=128M",
                                         "id=mem2,size=128M"],
                              ["guest_numa_id=0,memory_zones=[mem0,mem2]",
                               "guest_numa_id=1,memory_zones=mem1"]),
        "numa-spec-cpus": vm("size=0", _TWO, ["guest_numa_id=0,cpus=[1-3,7],memory_zones=mem0",
                                              "guest_numa_id=1,cpus=[0,4-6],memory_zones=mem1"],
                             "boot=8"),
        "numa-default-cpus": vm("size=0", _TWO, ["guest_numa_id=1,cpus=0,memory_zones=mem1",
                                                 "guest_numa_id=0,cpus=1,memory_zones=mem0"],
                                "boot=3"),
        "numa-slit-default": vm("size=0", _TWO, numa2, "boot=2"),
        "numa-cpu-hotplug": vm("size=0", _TWO, ["guest_numa_id=0,cpus=[0-1],memory_zones=mem0",
                                                "guest_numa_id=1,cpus=[2-3],memory_zones=mem1"],
                               "boot=2,max=4"),
        "numa-unassigned-zone": vm("size=128M", (), ["guest_numa_id=0", "guest_numa_id=1"],
                                   "boot=2"),
        "host-nodes": vm("size=0", ["id=mem0,size=128M,host_numa_node=0",
                                    "id=mem1,size=128M,host_numa_node=1"], numa2, "boot=2"),
        "file-private": vm("size=0", [f"id=mem0,size=128M,file={ZONE_FILE}"]),
        "file-shared": vm("size=0", [f"id=mem0,size=128M,file={ZONE_FILE},shared=on"]),
        "dir-private": vm("size=0", [f"id=mem0,size=128M,file={ZONE_DIR}"]),
        "dir-shared": vm("size=0", [f"id=mem0,size=128M,file={ZONE_DIR},shared=on"]),
        "files-mixed": vm("size=0", [f"id=mem0,size=64M,file={ZONE_FILE},shared=on",
                                     f"id=mem1,size=64M,file={ZONE_DIR},shared=on",
                                     f"id=mem2,size=64M,file={ZONE_FILE2}"]),
        "hugetlb-default-size": vm("size=128M,hugepages=on"),
        "hugetlb-2m": vm("size=256M,hugepages=on,hugepage_size=2M"),
        "hugetlb-2m-zone": vm("size=0", ["id=mem0,size=256M,hugepages=on,hugepage_size=2M"]),
        "hugetlb-2m-nodes": vm("size=0", [
            "id=mem0,size=128M,hugepages=on,hugepage_size=2M,host_numa_node=0",
            "id=mem1,size=128M,hugepages=on,hugepage_size=2M,host_numa_node=1"], numa2, "boot=2"),
        "hugetlb-2m-prefault": vm("size=128M,hugepages=on,hugepage_size=2M,prefault=on"),
        "hugetlb-2m-zone-prefault": vm("size=0", [
            "id=mem0,size=128M,hugepages=on,hugepage_size=2M,prefault=on"]),
        "hugetlb-1g-zone": vm("size=0", ["id=mem0,size=1G,hugepages=on,hugepage_size=1G"]),
        "hugetlb-1g-node1": vm("size=0", [
            "id=mem0,size=1G,hugepages=on,hugepage_size=1G,host_numa_node=1"]),
        "hugetlb-1g-prefault": vm("size=0", [
            "id=mem0,size=1G,hugepages=on,hugepage_size=1G,prefault=on"]),
        "hugetlb-mixed": vm("size=0", ["id=mem0,size=64M",
                                       "id=mem1,size=128M,hugepages=on,hugepage_size=2M"]),
        "acpi-hotplug": vm("size=128M,hotplug_size=256M"),
        "acpi-hotplug-zones": vm("size=0,hotplug_size=256M", _TWO),
        "acpi-hotplug-numa": vm("size=0,hotplug_size=128M", _TWO, numa2, "boot=2"),
        "virtio-mem": vm("size=128M,hotplug_method=virtio-mem,hotplug_size=256M,"
                         "hotplugged_size=128M"),
        "virtio-mem-unplugged": vm("size=128M,hotplug_method=virtio-mem,hotplug_size=128M"),
        "virtio-mem-hugetlb": vm("size=128M,hugepages=on,hotplug_method=virtio-mem,"
                                 "hotplug_size=128M,hotplugged_size=64M"),
        "virtio-mem-zones-numa": vm("size=0,hotplug_method=virtio-mem", [
            "id=mem0,size=64M,hotplug_size=128M",
            "id=mem1,size=64M,hotplug_size=256M,hotplugged_size=64M"], numa2, "boot=2"),
        "balloon": vm("size=256M", balloon="size=64M"),
    }


QUICK = (
    "default", "anonymous", "shmem", "mergeable", "file-private", "file-shared", "dir-shared",
    "hugetlb-2m-zone", "hugetlb-2m-prefault", "hugetlb-1g-zone", "numa3-asym", "host-nodes",
    "acpi-hotplug", "virtio-mem",
    "rej-numa_zone_single_node", "rej-zones_need_memory_size_zero",
    "rej-memory_hotplugged_needs_virtio_mem", "rej-memory_hugepage_size_offered",
    "rej-hugepage_pool_sufficient", "rej-parse-list-without-brackets",
)


# ---------------------------------------------------------------------------------------------
# (d) rejections: one configuration per rule (and a few syntax errors)

def rejections() -> dict[str, VmConfig]:
    vmem = "size=0,hotplug_method=virtio-mem"
    return {
        "memory_size_mandatory": vm("mergeable=on"),
        "memory_size_zero_needs_zones": vm("size=0"),
        "zones_need_memory_size_zero": vm("size=128M", ["id=mem0,size=128M"]),
        "zones_need_memory_size_zero-default": vm(None, ["id=mem0,size=128M"]),
        "zone_id_mandatory": vm("size=0", ["size=128M"]),
        "zone_size_mandatory": vm("size=0", ["id=mem0"]),
        "zone_id_unique": vm("size=0", ["id=mem0,size=64M", "id=mem0,size=64M"]),
        "zone_size_not_zero": vm("size=0", ["id=mem0,size=128M", "id=mem1,size=0"]),
        "memory_hotplug_size_not_zero": vm("size=128M,hotplug_size=0"),
        "memory_hotplugged_size_not_zero": vm("size=128M,hotplug_method=virtio-mem,"
                                              "hotplug_size=256M,hotplugged_size=0"),
        "memory_hotplugged_needs_hotplug_size": vm("size=128M,hotplug_method=virtio-mem,"
                                                   "hotplugged_size=128M"),
        "memory_hotplugged_needs_virtio_mem": vm("size=128M,hotplug_size=256M,"
                                                 "hotplugged_size=128M"),
        "memory_hotplugged_within_hotplug_size": vm("size=128M,hotplug_method=virtio-mem,"
                                                    "hotplug_size=128M,hotplugged_size=256M"),
        "memory_virtio_mem_needs_size": vm(vmem + ",hotplug_size=256M", ["id=mem0,size=128M"]),
        "zone_hotplug_size_not_zero": vm(vmem, ["id=mem0,size=128M,hotplug_size=0"]),
        "zone_hotplugged_needs_virtio_mem": vm("size=0", [
            "id=mem0,size=128M,hotplug_size=256M,hotplugged_size=128M"]),
        "zone_hotplug_needs_virtio_mem": vm("size=0", ["id=mem0,size=128M,hotplug_size=256M"]),
        "zone_hotplugged_size_not_zero": vm(vmem, [
            "id=mem0,size=128M,hotplug_size=256M,hotplugged_size=0"]),
        "zone_hotplugged_needs_hotplug_size": vm(vmem, ["id=mem0,size=128M,hotplugged_size=128M"]),
        "zone_hotplugged_within_hotplug_size": vm(vmem, [
            "id=mem0,size=128M,hotplug_size=128M,hotplugged_size=256M"]),
        "memory_hugepage_size_needs_hugepages": vm("size=128M,hugepage_size=2M"),
        "memory_hugepage_size_power_of_two": vm("size=128M,hugepages=on,hugepage_size=3M"),
        "memory_hugepage_size_offered": vm("size=128M,hugepages=on,hugepage_size=4M"),
        "zone_hugepage_size_needs_hugepages": vm("size=0", ["id=mem0,size=128M,hugepage_size=2M"]),
        "zone_hugepage_size_power_of_two": vm("size=0", [
            "id=mem0,size=128M,hugepages=on,hugepage_size=3M"]),
        "zone_hugepage_size_offered": vm("size=0", [
            "id=mem0,size=128M,hugepages=on,hugepage_size=4M"]),
        "zone_file_excludes_hugepages": vm("size=0", [
            f"id=mem0,size=128M,file={ZONE_FILE},hugepages=on"]),
        "zone_shared_file_not_bound": vm("size=0", [
            f"id=mem0,size=128M,file={ZONE_FILE},shared=on,host_numa_node=0"]),
        "memory_sizes_page_multiple": vm("size=129M,hugepages=on"),
        "memory_sizes_page_multiple-4k": vm("size=131074K"),
        "memory_sizes_page_multiple-hotplug": vm("size=128M,hugepages=on,hotplug_size=129M"),
        "zone_sizes_page_multiple": vm("size=0", [
            "id=mem0,size=129M,hugepages=on,hugepage_size=2M"]),
        "zone_sizes_page_multiple-1g": vm("size=0", [
            "id=mem0,size=512M,hugepages=on,hugepage_size=1G"]),
        "virtio_mem_region_aligned": vm("size=128M,hotplug_method=virtio-mem,hotplug_size=64M"),
        "virtio_mem_plugged_blocks": vm("size=128M,hotplug_method=virtio-mem,hotplug_size=128M,"
                                        "hotplugged_size=1M"),
        "zone_host_numa_node_present": vm("size=0", ["id=mem0,size=128M,host_numa_node=2"]),
        "numa_id_mandatory": vm("size=0", _TWO, ["memory_zones=[mem0,mem1]"]),
        "numa_id_unique": vm("size=0", _TWO, ["guest_numa_id=0,memory_zones=mem0",
                                              "guest_numa_id=0,memory_zones=mem1"]),
        "numa_ids_dense": vm("size=0", _TWO, ["guest_numa_id=0,memory_zones=mem0",
                                              "guest_numa_id=2,memory_zones=mem1"]),
        "numa_zone_exists": vm("size=0", _TWO, ["guest_numa_id=0,memory_zones=[mem0,mem1,mem9]"]),
        "numa_zone_single_node": vm("size=0", ["id=mem0,size=128M"], [
            "guest_numa_id=0,memory_zones=mem0", "guest_numa_id=1,memory_zones=mem0"]),
        "numa_distance_destination_exists": vm("size=0", _TWO, [
            "guest_numa_id=0,distances=[1@20],memory_zones=[mem0,mem1]"]),
        "numa_distance_destination_once": vm("size=0", _TWO, [
            "guest_numa_id=0,distances=[1@15,1@20],memory_zones=mem0",
            "guest_numa_id=1,memory_zones=mem1"]),
        "numa_cpu_single_node": vm("size=0", _TWO, ["guest_numa_id=0,cpus=[0-1],memory_zones=mem0",
                                                    "guest_numa_id=1,cpus=1,memory_zones=mem1"],
                                   "boot=2"),
        "numa_cpu_exists": vm("size=0", _TWO, ["guest_numa_id=0,cpus=[0-2],memory_zones=mem0",
                                               "guest_numa_id=1,memory_zones=mem1"], "boot=2"),
        "cpus_counts": vm("size=128M", cpus="boot=2,max=1"),
        "layout_boot_ram_minimum": vm("size=1M"),
        "layout_address_space": vm("size=128M,hotplug_size=2T"),
        "hugepage_pool_sufficient": vm("size=0", [
            "id=mem0,size=1G,hugepages=on,hugepage_size=1G,host_numa_node=0",
            "id=mem1,size=1G,hugepages=on,hugepage_size=1G,host_numa_node=0"]),
        "hugepage_pool_sufficient-2m-total": vm("size=1100M,hugepages=on"),
        "hugepage_pool_sufficient-2m-node": vm("size=0", [
            "id=mem0,size=600M,hugepages=on,hugepage_size=2M,host_numa_node=0"]),
        "hugepage_pool_sufficient-1g-total": vm("size=0", [
            "id=mem0,size=1G,hugepages=on,hugepage_size=1G",
            "id=mem1,size=1G,hugepages=on,hugepage_size=1G",
            "id=mem2,size=1G,hugepages=on,hugepage_size=1G"]),
        "balloon_smaller_than_ram": vm("size=128M", balloon="size=128M"),
        "parse-unknown-key": vm("size=128M,foo=on"),
        "parse-bad-size": vm("size=12Q"),
        "parse-bad-bool": vm("size=128M,shared=yes"),
        "parse-bad-enum": vm("size=128M,hotplug_method=dimm"),
        # "As soon as one tries to describe a list of values, `[` and `]` must be used"
        "parse-list-without-brackets": vm("size=0", _TWO,
                                          ["guest_numa_id=0,memory_zones=mem0,mem1"]),
    }


# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _full() -> tuple[Case, ...]:
    cases: list[Case] = []
    for name, cfg in scenarios().items():
        cases.append(make_case(name, cfg, "scenario"))
    cases += value_cases()
    cases += pairwise_cases()
    for name, cfg in rejections().items():
        cases.append(make_case(f"rej-{name}", cfg, "rule"))
    seen: dict[str, Case] = {}
    names: set[str] = set()
    out = []
    for c in cases:
        key = config_key(c.config)
        if key in seen:          # same configuration: keep the first (named) case
            continue
        if c.name in names:
            raise ValueError(f"duplicate case name {c.name}")
        seen[key] = c
        names.add(c.name)
        out.append(c)
    # Linux cases come after the deduplication: the same configuration under another guest.
    for lc in linux.CASES:
        c = make_case(lc.name, linux.config(lc), "linux", f"boot:{lc.boot}", f"end:{lc.end}")
        if c.name in names or not c.valid:
            raise ValueError(f"Linux case {c.name}: duplicate name or not a valid configuration")
        c.guest, c.end = "linux", lc.end
        names.add(c.name)
        out.append(c)
    # Resize sequences: their own guest and steps, each configuration valid by the oracle.
    for seq in resize.SEQUENCES:
        c = make_case(seq.name, resize.config(seq), "resize")
        if c.name in names or not isinstance(c.expect, Expectation):
            raise ValueError(f"resize case {c.name}: duplicate name or not a valid configuration")
        c.guest, c.steps = ("linux" if seq.linux else "resize"), tuple(resize.plan_steps(seq, c.expect))
        if seq.linux:
            c.end = "watch"      # a new report after each change (guests/linux/init)
        names.add(c.name)
        out.append(c)
    # Hostile guest cases: the guest attacks the devices, the host must survive (hostile.py).
    for hc in hostile.CASES:
        c = make_case(hc.name, hostile.config(hc), "hostile")
        if c.name in names or not isinstance(c.expect, Expectation):
            raise ValueError(f"hostile case {c.name}: duplicate name or not a valid configuration")
        c.guest, c.end, c.steps = "hostile", hc.end, hostile.steps(hc)
        names.add(c.name)
        out.append(c)
    # Fault injection: the host fails under memvisor (faults.py); its own setup, no file steps.
    for fc in faults.CASES:
        cfg = faults.config(fc)
        c = Case(fc.name, cfg, expect(cfg), ("fault", f"fault:{fc.kind}"), fc.setup,
                 fc.teardown, fc.files, guest="faults", steps=fc.steps)
        if c.name in names or not c.valid:
            raise ValueError(f"fault case {c.name}: duplicate name or not a valid configuration")
        names.add(c.name)
        out.append(c)
    quick = set(QUICK) | set(linux.QUICK) | set(resize.QUICK) | set(hostile.QUICK) | \
        set(faults.QUICK)
    missing = quick - names
    if missing:
        raise ValueError(f"QUICK names no case: {sorted(missing)}")
    for c in out:
        if c.name in quick:
            c.tags = c.tags + ("quick",)
    return tuple(out)


def generate(mode: str = "full") -> list[Case]:
    if mode == "full":
        return list(_full())
    if mode == "quick":
        return [c for c in _full() if "quick" in c.tags]
    raise ValueError(f"mode {mode!r}: 'full' or 'quick'")


# ---------------------------------------------------------------------------------------------
# Coverage

def _explicit_values(case: Case) -> set[tuple[str, str, str]]:
    """(group, option, value) written on the command line of a case."""
    cfg = case.config
    out = set()
    for group, texts in (("MEMORY", [cfg.memory] if cfg.memory else []),
                         ("ZONE", cfg.zones), ("NUMA", cfg.numa)):
        for text in texts:
            out |= {(group, k, v) for k, v in split_options(text)}
    return out


def _rows(case: Case) -> tuple[list[dict], list[dict]]:
    """The case's configuration as pairwise rows: (memory rows, zone rows); defaults filled."""
    cfg = case.config

    def filled(group: str, text: str) -> dict:
        given = dict(split_options(text))
        return {o.name: given.get(o.name, o.default or None)
                for o in optionspec.group_options(group)}
    mem = filled("MEMORY", cfg.memory or "")
    if not cfg.zones:
        return ([mem] if cfg.memory is not None else []), []
    zrows = []
    for z in cfg.zones:
        row = filled("ZONE", z)
        row["memory.hotplug_method"], row["memory.thp"] = mem["hotplug_method"], mem["thp"]
        zrows.append(row)
    return [], zrows


def coverage(cases: list[Case]) -> dict:
    valid = [c for c in cases if c.valid]
    rejected = [c for c in cases if not c.valid]
    wanted = {(o.group, o.name, v) for o in optionspec.options()
              for v in optionspec.test_values(o)}
    seen = set().union(*(_explicit_values(c) for c in valid)) if valid else set()
    mem_rows, zone_rows = [], []
    for c in valid:
        m, z = _rows(c)
        mem_rows += m
        zone_rows += z
    backings_all = [b.name for b in optionspec.backings()]
    backings_seen = set().union(*(c.expect.backings for c in valid)) if valid else set()
    rules_all = [r.name for r in RULES]
    rules_seen = {c.expect.rule for c in rejected}
    return {
        "cases": len(cases), "valid": len(valid), "rejections": len(rejected),
        "assumption_cases": sum(any(t.startswith("assumption:") for t in c.tags) for c in cases),
        "values": {"covered": len(wanted & seen), "total": len(wanted),
                   "missing": sorted("{}.{}={}".format(*v) for v in wanted - seen)},
        "pairwise": {"memory": memory_pairwise().coverage(mem_rows),
                     "zone": zone_pairwise().coverage(zone_rows)},
        "backings": {"covered": len(backings_seen & set(backings_all)),
                     "total": len(backings_all),
                     "missing": sorted(set(backings_all) - backings_seen)},
        "rules": {"covered": len(rules_seen & set(rules_all)), "total": len(rules_all),
                  "missing": sorted(set(rules_all) - rules_seen)},
    }

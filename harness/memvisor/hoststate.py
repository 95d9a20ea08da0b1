"""What the host shows about a running VMM: smaps, numa_maps, huge page pools, KSM.

Pure parsers over text plus small readers of /proc and /sys, usable on the host and inside
the test host alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

HUGEPAGES = Path("/sys/kernel/mm/hugepages")
NODES = Path("/sys/devices/system/node")


@dataclass
class Mapping:
    start: int
    end: int
    perms: str
    name: str
    fields: dict[str, int] = field(default_factory=dict)  # kB values from smaps
    vmflags: set[str] = field(default_factory=set)

    @property
    def size(self) -> int:
        return self.end - self.start

    def kb(self, key: str) -> int:
        return self.fields.get(key, 0)

    @property
    def resident_kb(self) -> int:
        """What the mapping holds: Rss, and hugetlb pages, which smaps counts apart."""
        return self.kb("Rss") + self.kb("Shared_Hugetlb") + self.kb("Private_Hugetlb")


_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")


def parse_smaps(text: str) -> list[Mapping]:
    maps: list[Mapping] = []
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            maps.append(Mapping(int(m[1], 16), int(m[2], 16), m[3], m[4].strip()))
            continue
        if not maps:
            continue
        key, _, value = line.partition(":")
        if key == "VmFlags":
            maps[-1].vmflags = set(value.split())
        elif value.strip().endswith("kB"):
            maps[-1].fields[key] = int(value.split()[0])
    return maps


@dataclass
class NumaMap:
    start: int
    policy: str                      # "default", "bind:0", "interleave:0-1", ...
    pages_per_node: dict[int, int]   # N<node>=<pages>
    kernelpagesize_kb: int
    attrs: dict[str, str]


def parse_numa_maps(text: str) -> list[NumaMap]:
    out: list[NumaMap] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        attrs: dict[str, str] = {}
        nodes: dict[int, int] = {}
        for p in parts[2:]:
            k, _, v = p.partition("=")
            if re.fullmatch(r"N\d+", k):
                nodes[int(k[1:])] = int(v)
            else:
                attrs[k] = v
        out.append(NumaMap(int(parts[0], 16), parts[1], nodes,
                           int(attrs.get("kernelpagesize_kB", "4")), attrs))
    return out


def find_mapping(maps: list[Mapping], start: int) -> Mapping | None:
    """The mapping that begins at `start` (a zone's host address as memvisor -v logs it)."""
    return next((m for m in maps if m.start == start), None)


def hugepage_counters() -> dict[str, int]:
    """free/total/resv counters per huge page size and per node: 'free_2048kB', 'free_2048kB_node0'."""
    out: dict[str, int] = {}
    if HUGEPAGES.is_dir():
        for d in sorted(HUGEPAGES.iterdir()):
            size = d.name.split("-")[1]
            for key, fname in (("free", "free_hugepages"), ("total", "nr_hugepages"),
                               ("resv", "resv_hugepages")):
                out[f"{key}_{size}"] = int((d / fname).read_text())
    for node in sorted(NODES.glob("node[0-9]*")):
        for d in sorted((node / "hugepages").glob("hugepages-*")):
            size = d.name.split("-")[1]
            out[f"free_{size}_{node.name}"] = int((d / "free_hugepages").read_text())
    return out


def read_proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return ""

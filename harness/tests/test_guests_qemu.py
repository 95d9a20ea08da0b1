"""The guests under a VMM nobody here wrote: QEMU (TCG), booting build/guests/*.elf through PVH.

The probe's report of QEMU's ACPI tables is checked two ways: against an oracle of what QEMU
builds from the -numa options (nodes, memory per node, CPUs per node, distances, written from
QEMU's documented behaviour), and against this file's own parsers of the raw SRAT/SLIT/MADT
bytes the probe dumps (`dump=`). The FDT reader is checked with blobs written here and put in
guest RAM by QEMU's generic loader, one consistent with QEMU's tables and one that is not.

QEMU exits with (code << 1) | 1 through isa-debug-exit; its own failures exit 1 too, so every
case also requires the report's SUMMARY line. One QEMU at a time (the machine is shared).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from memvisor.report import ReportError, parse_fault, parse_probe, parse_report

TOP = Path(__file__).resolve().parents[2]
PROBE = TOP / "build" / "guests" / "probe.elf"
FAULT = TOP / "build" / "guests" / "fault.elf"
QEMU = shutil.which("qemu-system-x86_64")
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

need_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed (ci/deps.sh)")


def need(image: Path) -> None:
    if not image.exists():
        pytest.skip(f"{image.relative_to(TOP)} missing: run `make guests` first")


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str

    @property
    def guest_code(self) -> int | None:
        """The code written to port 0xf4, or None when QEMU did not exit through it."""
        return self.status >> 1 if self.status > 0 and self.status & 1 else None


def qemu(image: Path, args: list[str], append: str = "", timeout: int = 60) -> Run:
    need(image)
    cmd = [QEMU or "qemu-system-x86_64", "-nodefaults", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
           "-kernel", str(image), *args]
    if append:
        cmd += ["-append", append]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(p.returncode, p.stdout.decode("ascii", "replace"), p.stderr.decode("ascii", "replace"))


# ---- oracle: what QEMU (hw/i386/acpi-build.c, hw/core/numa.c) builds from -numa ----

@dataclass
class Numa:
    sizes: list[int]                   # memdev size per node
    cpus: list[list[int]]              # cpu indexes per node (= APIC ids with -smp N)
    dist: dict[tuple[int, int], int]   # -numa dist src,dst -> val

    def args(self) -> list[str]:
        out: list[str] = []
        for i, (size, cpus) in enumerate(zip(self.sizes, self.cpus)):
            out += ["-object", f"memory-backend-ram,id=m{i},size={size // MiB}M",
                    "-numa", f"node,nodeid={i},memdev=m{i},cpus={min(cpus)}-{max(cpus)}"]
        for (a, b), d in self.dist.items():
            out += ["-numa", f"dist,src={a},dst={b},val={d}"]
        return out

    def slit(self) -> list[list[int]]:
        """10 on the diagonal; a pair given once is symmetric (QEMU requires one direction)."""
        n = len(self.sizes)
        return [[10 if i == j else self.dist.get((i, j), self.dist.get((j, i), 0)) for j in range(n)]
                for i in range(n)]

    def srat_mem(self) -> list[int]:
        """Nodes are laid out back to back from 0; SRAT leaves out [640 KiB, 1 MiB)."""
        out, base = [], 0
        for size in self.sizes:
            end = base + size
            out.append(size - max(0, min(end, 1 * MiB) - max(base, 640 * KiB)))
            base = end
        return out


# ---- independent parsers of the raw tables ----

def checksum_ok(table: bytes) -> bool:
    return sum(table) % 256 == 0 and struct.unpack_from("<I", table, 4)[0] == len(table)


def entries(table: bytes, start: int):
    off = start
    while off + 2 <= len(table) and table[off + 1] >= 2:
        yield table[off], table[off:off + table[off + 1]]
        off += table[off + 1]


def raw_srat(t: bytes) -> tuple[list[tuple], list[tuple]]:
    """CPUs as (type, apic, node, flags), memory as (node, base, size, flags)."""
    cpus, mems = [], []
    for typ, e in entries(t, 48):
        if typ == 0:
            cpus.append((0, e[3], e[2] | int.from_bytes(e[9:12], "little") << 8,
                         struct.unpack_from("<I", e, 4)[0]))
        elif typ == 2:
            node, apic, flags = struct.unpack_from("<III", e, 4)
            cpus.append((2, apic, node, flags))
        elif typ == 1:
            node, = struct.unpack_from("<I", e, 2)
            base, size = struct.unpack_from("<QQ", e, 8)
            flags, = struct.unpack_from("<I", e, 28)
            mems.append((node, base, size, flags))
    return cpus, mems


def raw_madt(t: bytes) -> list[tuple]:
    """Processors as (type, uid, apic, flags)."""
    out = []
    for typ, e in entries(t, 44):
        if typ == 0:
            out.append((0, e[2], e[3], struct.unpack_from("<I", e, 4)[0]))
        elif typ == 9:
            apic, flags, uid = struct.unpack_from("<III", e, 4)
            out.append((9, uid, apic, flags))
    return out


def raw_slit(t: bytes) -> list[list[int]]:
    n, = struct.unpack_from("<Q", t, 36)
    return [list(t[44 + i * n:44 + (i + 1) * n]) for i in range(n)]


# ---- a flattened device tree writer (devicetree specification v0.4, chapter 5) ----

Node = tuple[str, dict[str, bytes], list]


def u32s(*values: int) -> bytes:
    return b"".join(struct.pack(">I", v) for v in values)


def reg64(addr: int, size: int) -> bytes:
    return struct.pack(">QQ", addr, size)


def fdt_blob(root: Node) -> bytes:
    strings, offsets, body = bytearray(), {}, bytearray()

    def pad(b: bytes) -> bytes:
        return b + bytes(-len(b) % 4)

    def walk(node: Node) -> None:
        name, props, children = node
        body.extend(u32s(1) + pad(name.encode() + b"\0"))
        for key, value in props.items():
            if key not in offsets:
                offsets[key] = len(strings)
                strings.extend(key.encode() + b"\0")
            body.extend(u32s(3, len(value), offsets[key]) + pad(value))
        for child in children:
            walk(child)
        body.extend(u32s(2))

    walk(root)
    body.extend(u32s(9))
    off_struct = 40 + 16                      # header, then an empty reservation map
    off_strings = off_struct + len(body)
    header = u32s(0xd00dfeed, off_strings + len(strings), off_struct, off_strings, 40, 17, 16, 0,
                  len(strings), len(body))
    return header + bytes(16) + bytes(body) + bytes(strings)


def numa_fdt(mems: list[tuple[int, int, int]], cpu_nodes: list[int], dist: list[list[int]]) -> bytes:
    """A memvisor-style tree (DEVELOPERS.md): memory (addr, size, node), cpus, distance-map."""
    memory = [(f"memory@{a:x}", {"device_type": b"memory\0", "reg": reg64(a, s),
                                 "numa-node-id": u32s(n)}, []) for a, s, n in mems]
    cpus = [(f"cpu@{i:x}", {"device_type": b"cpu\0", "reg": u32s(i), "status": b"okay\0",
                            "numa-node-id": u32s(n)}, []) for i, n in enumerate(cpu_nodes)]
    triplets = [v for i, row in enumerate(dist) for j, d in enumerate(row) for v in (i, j, d)]
    return fdt_blob(("", {"#address-cells": u32s(2), "#size-cells": u32s(2),
                          "compatible": b"memvisor,vm\0"},
                     [*memory, ("cpus", {"#address-cells": u32s(1), "#size-cells": u32s(0)}, cpus),
                      ("distance-map", {"compatible": b"numa-distance-map-v1\0",
                                        "distance-matrix": u32s(*triplets)}, [])]))


FDT_ADDR = 0x8000000   # 128 MiB: usable RAM that SeaBIOS leaves alone


def loader(tmp: Path, blob: bytes) -> list[str]:
    path = tmp / "tree.dtb"
    path.write_bytes(blob)
    return ["-device", f"loader,file={path},addr={FDT_ADDR:#x},force-raw=on"]


# ---- two NUMA nodes, an FDT that agrees with QEMU's tables ----

TWO = Numa([256 * MiB, 256 * MiB], [[0, 1, 2], [3]], {(0, 1): 25})


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, object]:
    tmp = tmp_path_factory.mktemp("fdt")
    blob = numa_fdt([(0, 256 * MiB, 0), (256 * MiB, 256 * MiB, 1)], [0, 0, 0, 1], TWO.slit())
    run = qemu(PROBE, ["-machine", "q35", "-cpu", "max", "-smp", "4", "-m", "512M", *TWO.args(),
                       *loader(tmp, blob)],
               append=f"memtest=full dump=SRAT,SLIT,APIC fdt={FDT_ADDR:#x}")
    return run, parse_probe(run.stdout)


@need_qemu
def test_two_nodes_consistent_exit_zero(two_nodes) -> None:
    run, r = two_nodes
    assert run.guest_code == 0, run.stdout + run.stderr
    assert r.ok and r.failed == 0
    assert {n: c.status for n, c in r.checks.items()} == {
        "e820_overlap": "PASS", "acpi_checksum": "PASS", "madt_srat_cpus": "PASS",
        "srat_slit": "PASS", "fdt": "PASS", "srat_fdt_mem": "PASS", "srat_fdt_cpus": "PASS",
        "slit_fdt": "PASS", "address_width": "PASS", "memtest": "PASS"}


@need_qemu
def test_two_nodes_match_numa_options(two_nodes) -> None:
    _, r = two_nodes
    assert sorted(r.srat_nodes) == [0, 1]
    assert [r.srat_nodes[n].mem for n in (0, 1)] == TWO.srat_mem()
    assert [r.srat_nodes[n].hotplug_mem for n in (0, 1)] == [0, 0]
    assert [r.srat_nodes[n].cpus for n in (0, 1)] == [len(c) for c in TWO.cpus]
    assert {c.apic: c.node for c in r.srat_cpus} == {a: n for n, cs in enumerate(TWO.cpus) for a in cs}
    assert r.slit == [[10, 25], [25, 10]] == TWO.slit()
    assert [(c.apic, c.enabled) for c in r.madt_cpus] == [(0, True), (1, True), (2, True), (3, True)]


@need_qemu
def test_two_nodes_parsers_agree_with_raw_tables(two_nodes) -> None:
    _, r = two_nodes
    assert set(r.dumps) == {"SRAT", "SLIT", "APIC"}
    for sig, raw in r.dumps.items():
        assert checksum_ok(raw), sig
        assert r.table(sig).length == len(raw) and r.table(sig).checksum_ok
    cpus, mems = raw_srat(r.dumps["SRAT"])
    assert [(c.type, c.apic, c.node, c.flags) for c in r.srat_cpus] == cpus
    assert [(m.node, m.base, m.size, m.flags) for m in r.srat_mems] == mems
    assert [(m.enabled, m.hotpluggable) for m in r.srat_mems] == \
        [(bool(f & 1), bool(f & 2)) for *_, f in mems]
    assert r.slit == raw_slit(r.dumps["SLIT"])
    assert [(c.type, c.uid, c.apic, c.flags) for c in r.madt_cpus] == raw_madt(r.dumps["APIC"])


@need_qemu
def test_two_nodes_fdt_read_back(two_nodes) -> None:
    _, r = two_nodes
    assert r.fdt_present and [m.source for m in r.modules] == ["cmdline"]
    assert [(m.addr, m.size, m.node, m.hotpluggable) for m in r.fdt_mems] == \
        [(0, 256 * MiB, 0, False), (256 * MiB, 256 * MiB, 1, False)]
    assert [(c.apic, c.node, c.status) for c in r.fdt_cpus] == \
        [(0, 0, "okay"), (1, 0, "okay"), (2, 0, "okay"), (3, 1, "okay")]
    assert r.fdt_distances == TWO.slit()


@need_qemu
def test_two_nodes_memory_and_paging(two_nodes) -> None:
    _, r = two_nodes
    assert 510 * MiB < r.usable_ram <= 512 * MiB
    usable = [e for e in r.e820 if e.type == 1]
    assert usable and usable[0].addr == 0 and any(e.addr <= 1 * MiB < e.end for e in usable)
    t = r.memtest
    assert t.mode == "full" and t.stride == 1 and t.errors == 0
    # every usable page is tested except the image, page tables, the FDT and boot data
    assert t.pages + t.skipped == sum(e.end // 4096 - (e.addr + 4095) // 4096 for e in usable)
    assert t.skipped < 64
    assert r.cpu.pdpe1gb and r.paging.page_size == GiB and r.paging.limit >= 512 * GiB


# ---- three nodes, CPU and memory hotplug, no 1 GiB pages ----

THREE = Numa([128 * MiB] * 3, [[0], [1, 2], [3]], {(0, 1): 15, (0, 2): 25, (1, 2): 20})


@pytest.fixture(scope="module")
def three_nodes() -> tuple[Run, object]:
    run = qemu(PROBE, ["-machine", "q35", "-cpu", "qemu64", "-smp", "2,maxcpus=4",
                       "-m", "384M,slots=2,maxmem=1G", *THREE.args()],
               append="memtest=sample dump=SRAT,SLIT")
    return run, parse_probe(run.stdout)


@need_qemu
def test_three_nodes_match_numa_options(three_nodes) -> None:
    run, r = three_nodes
    assert run.guest_code == 0 and r.ok, run.stdout + run.stderr
    assert sorted(r.srat_nodes) == [0, 1, 2]
    assert [r.srat_nodes[n].mem for n in range(3)] == THREE.srat_mem()
    assert [r.srat_nodes[n].cpus for n in range(3)] == [1, 2, 1]
    assert r.slit == THREE.slit() == [[10, 15, 25], [15, 10, 20], [25, 20, 10]]
    cpus, mems = raw_srat(r.dumps["SRAT"])
    assert [(m.node, m.base, m.size, m.flags) for m in r.srat_mems] == mems
    assert r.slit == raw_slit(r.dumps["SLIT"])


@need_qemu
def test_three_nodes_hotplug(three_nodes) -> None:
    _, r = three_nodes
    # QEMU: device memory at 4 GiB (all RAM is below), maxmem - ram + 1 GiB per slot, last node
    hp = [m for m in r.srat_mems if m.hotpluggable]
    assert [(m.node, m.base, m.size, m.enabled) for m in hp] == \
        [(2, 4 * GiB, (1 * GiB - 384 * MiB) + 2 * GiB, True)]
    assert r.srat_nodes[2].hotplug_mem == hp[0].size
    # present and possible CPUs: 2 enabled MADT entries out of 4, all 4 in SRAT
    assert [c.enabled for c in r.madt_cpus] == [True, True, False, False]
    assert r.checks["madt_srat_cpus"].status == "PASS"
    # 2 MiB pages cover the hotplug area too
    assert not r.cpu.pdpe1gb and r.paging.page_size == 2 * MiB
    assert r.paging.limit >= hp[0].base + hp[0].size
    assert r.memtest.mode == "sample" and r.memtest.stride == 512 and r.memtest.errors == 0


# ---- no -numa: no SRAT, no SLIT ----

@need_qemu
def test_without_numa() -> None:
    run = qemu(PROBE, ["-machine", "q35", "-cpu", "max", "-smp", "2", "-m", "256M"], append="memtest=off")
    r = parse_probe(run.stdout)
    assert run.guest_code == 0 and r.ok, run.stdout + run.stderr
    assert r.table("SRAT") is None and r.table("SLIT") is None
    assert r.srat_cpus == [] and r.srat_nodes == {} and r.slit is None
    assert r.table("APIC") and r.table("DSDT") and r.table("DSDT").via == "fadt"
    assert r.rsdp_revision == 0 and r.table("RSDT") and all(t.checksum_ok for t in r.tables)
    assert [c.apic for c in r.madt_cpus if c.enabled] == [0, 1]
    assert r.checks["madt_srat_cpus"].status == "SKIP"
    assert r.checks["memtest"].status == "SKIP" and r.memtest.mode == "off"
    assert 254 * MiB < r.usable_ram <= 256 * MiB


# ---- microvm: XSDT, virtio-mmio devices in the DSDT ----

@need_qemu
def test_microvm_xsdt_and_virtio_mmio() -> None:
    run = qemu(PROBE, ["-machine", "microvm", "-cpu", "max", "-m", "256M",
                       "-device", "virtio-rng-device", "-device", "virtio-balloon-device"],
               append="memtest=off")
    if "microvm" in run.stderr and "SUMMARY" not in run.stdout:
        pytest.skip(f"this QEMU has no microvm machine: {run.stderr.strip()[:200]}")
    r = parse_probe(run.stdout)
    assert run.guest_code == 0 and r.ok, run.stdout + run.stderr
    assert r.rsdp_revision == 2 and r.table("XSDT") and r.table("XSDT").via == "rsdp"
    devs = [v for v in r.virtio_mmio if v.src == "acpi"]
    assert sorted(v.device_id for v in devs) == [4, 5]      # entropy, balloon
    for v in devs:
        assert v.magic == 0x74726976 and v.size == 0x200 and v.irq is not None
        assert v.name == f"VR{v.uid:02d}"


# ---- the probe fails when the FDT disagrees with ACPI ----

@need_qemu
def test_fdt_disagreeing_with_srat_and_slit_fails(tmp_path: Path) -> None:
    blob = numa_fdt([(0, 128 * MiB, 0), (128 * MiB, 384 * MiB, 1)],   # node 1 starts too low
                    [0, 0, 1, 1],                                      # cpu 2 on the wrong node
                    [[10, 20], [20, 10]])                              # distance 20, not 25
    run = qemu(PROBE, ["-machine", "q35", "-cpu", "max", "-smp", "4", "-m", "512M", *TWO.args(),
                       *loader(tmp_path, blob)], append=f"memtest=off fdt={FDT_ADDR:#x}")
    r = parse_probe(run.stdout)
    assert run.guest_code == 1, run.stdout + run.stderr
    assert not r.ok and r.failed == 3
    assert {n for n, c in r.checks.items() if c.status == "FAIL"} == \
        {"srat_fdt_mem", "srat_fdt_cpus", "slit_fdt"}
    assert any("apic=2 srat_node=0 fdt_node=1" in e for e in r.errors("srat_fdt_cpus"))
    assert any("from=0 to=1 slit=25 fdt=20" in e for e in r.errors("slit_fdt"))
    assert r.errors("srat_fdt_mem")


# ---- fault ----

@need_qemu
def test_fault_report_well_formed() -> None:
    size = 8 * MiB
    run = qemu(FAULT, ["-machine", "q35", "-cpu", "max", "-m", "128M"], append=f"size={size // MiB}M")
    r = parse_fault(run.stdout)
    assert run.guest_code == 0 and r.ok, run.stdout + run.stderr
    (sa, a, la), (sb, b, lb) = r.regions["a"], r.regions["b"]
    assert (sa, la, sb, lb) == (4096, size, 2 * MiB, size)
    assert a % (2 * MiB) == 0 and b % (2 * MiB) == 0 and (a + size <= b or b + size <= a)
    assert min(a, b) >= 2 * MiB                            # above the image at 1 MiB
    assert [(p.stride, p.touch) for p in r.phases] == [(4096, 1), (4096, 2), (2 * MiB, 1), (2 * MiB, 2)]
    for p in r.phases:
        assert p.pages == size // p.stride and p.size == size
        assert p.base == (a if p.stride == 4096 else b)
        assert p.cycles >= p.avg * p.pages
        if p.per_touch == "ok":     # per-touch extremes only where the timer is cheap enough
            assert 0 <= p.min <= p.max
        else:
            assert p.per_touch == "unreliable" and p.min is None and p.max is None
        assert (p.ns_avg is None) == (r.tsc_khz is None)


@need_qemu
def test_fault_bad_size_exit_2() -> None:
    run = qemu(FAULT, ["-machine", "q35", "-cpu", "max", "-m", "128M"], append="size=3M")
    r = parse_report(run.stdout, "memvisor-fault")
    assert run.guest_code == 2 and not r.ok and r.checks["cmdline"].status == "FAIL"


# ---- the parser itself (no QEMU) ----

def test_parser_rejects_truncated_and_inconsistent_reports() -> None:
    good = "junk memvisor-probe 1\ncmdline value=\"a\\x22b\"\nPASS: e820_overlap\nSUMMARY: ok pass=1 skip=0\n"
    r = parse_probe("SeaBIOS...\n" + good + "after\n")
    assert r.cmdline == 'a"b' and r.checks["e820_overlap"].status == "PASS"
    with pytest.raises(ReportError):
        parse_probe(good.replace("SUMMARY: ok pass=1 skip=0\n", ""))          # cut short
    with pytest.raises(ReportError):
        parse_probe(good.replace("PASS:", "FAIL:"))                            # FAIL but "ok"
    with pytest.raises(ReportError):
        parse_probe(good.replace("memvisor-probe 1", "memvisor-probe 2"))     # unknown version
    with pytest.raises(ReportError):
        parse_probe(good.replace('cmdline value="a\\x22b"', "e820 addr=0x0 size=zz type=1"))

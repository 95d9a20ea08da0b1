"""The Linux guest (guests/linux/) under QEMU TCG, without KVM, and build.py on bad kernels.

Debian's kernel boots as the bzImage, through QEMU's Linux loader, and as the vmlinux build.py
extracted, through PVH (QEMU boots an ELF only through its PVH note, so those boots also prove
the extraction). Each run's memvisor-linux report is checked against what the QEMU options
configure: nodes, CPUs, distances, memory per node and per memory block, the SRAT hotplug
range, the modules, the memory test. QEMU exits 0 on the guest's power-off but also, with
-no-reboot, on a reboot or a panic, so a power-off also needs the kernel's "reboot: Power down"
line. One QEMU at a time (the machine is shared).
"""
from __future__ import annotations

import gzip
import lzma
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from memvisor.report import LINUX, Line, Report, ReportError, parse_report

TOP = Path(__file__).resolve().parents[2]
OUT = TOP / "build" / "linux"
BUILD_PY = TOP / "guests" / "linux" / "build.py"
QEMU = shutil.which("qemu-system-x86_64")
MiB, GiB = 1 << 20, 1 << 30
TIMEOUT = 300      # a boot takes 5-10 s on an idle 2-core machine, far more on a loaded one

need_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed (ci/deps.sh)")

# Two nodes of 512 MiB, one CPU each, distance 20.
NUMA = ["-smp", "2",
        "-object", "memory-backend-ram,id=m0,size=512M", "-object", "memory-backend-ram,id=m1,size=512M",
        "-numa", "node,nodeid=0,cpus=0,memdev=m0", "-numa", "node,nodeid=1,cpus=1,memdev=m1",
        "-numa", "dist,src=0,dst=1,val=20"]
SMALL = ["-smp", "1"]     # with -m 256M: one node, one CPU, for what is not about NUMA


@dataclass
class Boot:
    status: int
    console: str
    report: Report

    def nodes(self) -> dict[int, Line]:
        return {ln.num("id"): ln for ln in self.report.all("node")}

    def distances(self) -> list[list[int]]:
        return [ln.nums("dist") for ln in sorted(self.report.all("distance"), key=lambda d: d.num("from"))]


def need(*names: str) -> list[Path]:
    paths = [OUT / n for n in names]
    if not all(p.exists() for p in paths):
        pytest.skip("build/linux is incomplete: run `make linux-guest` first")
    return paths


def qemu_cmd(kernel: str, memory: str, append: str, numa: list[str], serial: str = "stdio") -> list[str]:
    images = need(kernel, "initramfs.cpio.gz")
    return [QEMU or "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "max",
            "-m", memory, *numa, "-kernel", str(images[0]), "-initrd", str(images[1]),
            "-append", append, "-no-reboot", "-nodefaults", "-serial", serial, "-display", "none"]


def boot(kernel: str, memory: str, append: str, numa: list[str] = NUMA) -> Boot:
    p = subprocess.run(qemu_cmd(kernel, memory, append, numa), capture_output=True,
                       timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    console = p.stdout.decode("ascii", "replace") + p.stderr.decode("ascii", "replace")
    try:
        report = parse_report(console, LINUX)
    except ReportError as e:
        pytest.fail(f"{e}; QEMU status {p.returncode}; console tail:\n{console[-4000:]}")
    return Boot(p.returncode, console, report)


def assert_powered_off(b: Boot) -> None:
    assert b.status == 0, b.console[-4000:]
    assert "reboot: Power down" in b.console and "Kernel panic" not in b.console, b.console[-4000:]


def assert_two_nodes(b: Boot) -> None:
    r = b.report
    assert r.one("cpu").num("online") == 2 and r.one("cpu").num("possible") == 2
    nodes = b.nodes()
    assert sorted(nodes) == [0, 1]
    assert [nodes[n].nums("cpus") for n in (0, 1)] == [[0], [1]]
    for n in nodes.values():
        # What the kernel keeps for itself (memmap, its image on node 0) is well under a quarter.
        assert 384 * MiB < n.num("mem_total") <= 512 * MiB
        assert 0 < n.num("mem_free") <= n.num("mem_total")
    assert sum(n.num("mem_total") for n in nodes.values()) == r.one("meminfo").num("total")
    assert b.distances() == [[10, 20], [20, 10]]
    blocks = r.one("memory_blocks")
    assert (blocks.num("block_size"), blocks.num("count"), blocks.num("online"),
            blocks.num("offline")) == (128 * MiB, 8, 8, 0)
    # Each node's 512 MiB is exactly four online blocks, node 0 first.
    assert [(m.num("start"), m.num("end"), m.num("node"), m.text("state"), m.num("blocks"))
            for m in r.all("memory_range")] == [(0, 512 * MiB, 0, "online", 4),
                                                (512 * MiB, GiB, 1, "online", 4)]
    assert [(m.text("name"), m.num("loaded")) for m in r.all("module")] == \
        [(m, 1) for m in module_order()]


@pytest.fixture(scope="module")
def bzimage_boot() -> Boot:
    return boot("vmlinuz", "1G", "console=ttyS0 panic=-1 memtest=16M")


@need_qemu
def test_bzimage_boot_reports_two_nodes(bzimage_boot: Boot) -> None:
    b = bzimage_boot
    assert_powered_off(b)
    r = b.report
    assert r.ok and r.summary == "SUMMARY: ok pass=4 skip=0"
    assert {n: c.status for n, c in r.checks.items()} == \
        {"read": "PASS", "modules": "PASS", "memtest": "PASS", "nodes": "PASS"}
    assert r.one("cmdline").text("value") == "console=ttyS0 panic=-1 memtest=16M"
    assert_two_nodes(b)
    # Debian leaves new memory offline; -m without maxmem declares no hotplug range.
    assert r.one("memory_blocks").text("auto_online") == "offline"
    assert r.all("hotplug_range") == []


@need_qemu
def test_bzimage_boot_memtest(bzimage_boot: Boot) -> None:
    t = bzimage_boot.report.one("memtest")
    assert (t.num("size"), t.text("result"), t.num("errors")) == (16 * MiB, "ok", 0)


@need_qemu
def test_failed_check_still_summarized_and_powered_off() -> None:
    """A bad memtest= fails that check only; the guest still reports everything and powers off."""
    b = boot("vmlinux", "256M", "console=ttyS0 panic=-1 memtest=lots", numa=SMALL)
    assert_powered_off(b)
    r = b.report
    assert not r.ok and r.summary == "SUMMARY: FAIL 1 pass=3 skip=0"
    assert r.checks["memtest"].status == "FAIL" and r.one("memtest") is None
    assert r.errors("memtest") == ["memtest=lots: not off or a size NK, NM or NG"]
    assert [n.num("id") for n in r.all("node")] == [0] and b.distances() == [[10]]


# ---- the other ends of /init (end=) ----


@need_qemu
@pytest.mark.parametrize("end, line", [("reboot", "reboot: Restarting system"),
                                       ("panic", "Kernel panic - not syncing: sysrq triggered crash")])
def test_end_after_the_report(end: str, line: str) -> None:
    b = boot("vmlinux", "256M", f"console=ttyS0 panic=-1 memtest=1M end={end}", numa=SMALL)
    assert b.report.ok, b.console[-4000:]
    # QEMU -no-reboot turns the reset into an exit, status 0 as for a power-off.
    assert b.status == 0 and line in b.console and "reboot: Power down" not in b.console, b.console[-4000:]
    assert b.console.index(b.report.summary) < b.console.index(line)


@need_qemu
def test_end_hold_keeps_running(tmp_path: Path) -> None:
    console = tmp_path / "console"
    cmd = qemu_cmd("vmlinux", "256M", "console=ttyS0 panic=-1 memtest=1M end=hold", SMALL,
                   serial=f"file:{console}")
    q = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while "SUMMARY: " not in (text := console.read_text("ascii", "replace") if console.exists() else ""):
            assert q.poll() is None and time.monotonic() < deadline, text[-4000:]
            time.sleep(0.5)
        time.sleep(3)       # long enough for any of the other ends to have happened
        assert q.poll() is None, console.read_text("ascii", "replace")[-4000:]
        assert parse_report(console.read_text("ascii", "replace"), LINUX).ok
        assert "reboot:" not in console.read_text("ascii", "replace")
    finally:
        q.kill()
        q.wait()


def test_report_helper_outside_the_guest() -> None:
    """Run here, without the initramfs: what it cannot read fails a check instead of crashing."""
    helper, = need("report")
    if Path("/modules/order").exists():
        pytest.skip("this machine has a /modules/order")
    p = subprocess.run([str(helper)], capture_output=True, text=True, timeout=120)
    r = parse_report(p.stdout, LINUX)
    assert p.returncode == 1 and not r.ok, p.stdout + p.stderr
    assert r.checks["modules"].status == "FAIL" and r.all("module") == []
    assert r.errors("modules") == ["/modules/order: No such file or directory"]
    for v in r.all("virtio"):      # whatever this machine has: the fields keep the grammar
        assert re.fullmatch(r"0x[0-9a-f]+", v.text("device")) and re.fullmatch(r"0x[0-9a-f]+", v.text("vendor"))
        assert re.fullmatch(r"[A-Za-z0-9_.:-]+", v.text("driver"))


@need_qemu
def test_pvh_boot_hotplug_range_and_auto_online() -> None:
    b = boot("vmlinux", "1G,slots=2,maxmem=2G", "console=ttyS0 panic=-1 memtest=off memhp_online=1")
    assert_powered_off(b)
    r = b.report
    assert r.ok and r.summary == "SUMMARY: ok pass=3 skip=1"
    assert r.checks["memtest"].status == "SKIP" and r.one("memtest") is None
    assert_two_nodes(b)
    # QEMU: device memory at 4 GiB, (maxmem - ram) + 1 GiB per slot, on the last node.
    assert [(h.num("node"), h.num("start"), h.num("end")) for h in r.all("hotplug_range")] == \
        [(1, 4 * GiB, 4 * GiB + (2 * GiB - GiB) + 2 * GiB)]
    assert r.one("memory_blocks").text("auto_online") == "online"


@need_qemu
def test_watch_reports_a_hot_added_dimm(tmp_path: Path) -> None:
    """end=watch: QEMU hot-adds a 256 MiB DIMM (its monitor's device_add), Linux onlines it
    (memhp_online=1) and the guest reports again with the new memory, once it settled."""
    console, monitor = tmp_path / "console", tmp_path / "monitor"
    cmd = qemu_cmd("vmlinux", "256M,slots=2,maxmem=1G",
                   "console=ttyS0 panic=-1 memtest=off memhp_online=1 end=watch", SMALL,
                   serial=f"file:{console}") + ["-monitor", f"unix:{monitor},server=on,wait=off"]
    q = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def reports(n: int) -> list[Report]:
        deadline = time.monotonic() + TIMEOUT
        while (text := console.read_text("ascii", "replace") if console.exists() else "").count("SUMMARY: ") < n:
            assert q.poll() is None and time.monotonic() < deadline, text[-4000:]
            time.sleep(0.5)
        parts = text.split("memvisor-linux 1")[1:]
        return [parse_report("memvisor-linux 1" + part, LINUX) for part in parts]

    try:
        first = reports(1)[0]
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(monitor))
            s.sendall(b"object_add memory-backend-ram,id=hp0,size=256M\n"
                      b"device_add pc-dimm,id=dimm0,memdev=hp0\n")
            time.sleep(1)
        second = reports(2)[1]
    finally:
        q.kill()
        q.wait()
    grown = second.one("meminfo").num("total") - first.one("meminfo").num("total")
    # The new blocks' struct pages come out of the new memory itself: 64 B per 4 KiB page.
    assert 256 * MiB * 62 // 64 <= grown <= 256 * MiB, grown
    online = [r for r in second.all("memory_range") if r.text("state") == "online"]
    assert any(r.num("start") >= 4 * GiB for r in online), [r.text("start") for r in online]


# ---- the balloon under need: deflate on OOM, free page reporting (guest side of issue 11) ----
# QEMU's q35 has no virtio-mmio: these boots use virtio-balloon-pci (the initramfs loads virtio_pci).


def module_order() -> list[str]:
    """What the initramfs loads, dependencies first: its own /modules/order, read from the newc
    archive (a 110-byte header of hex fields, the name, then the data, each padded to 4)."""
    data = gzip.decompress(need("initramfs.cpio.gz")[0].read_bytes())
    at = 0
    while data[at:at + 6] == b"070701":
        filesize, namesize = int(data[at + 54:at + 62], 16), int(data[at + 94:at + 102], 16)
        name = data[at + 110:at + 110 + namesize - 1].decode()
        body = (at + 110 + namesize + 3) & ~3
        if name == "modules/order":
            return data[body:body + filesize].decode().split()
        at = (body + filesize + 3) & ~3
    raise AssertionError("no modules/order in the initramfs")


class Watched:
    """A guest in end=watch on QEMU's serial stdio (typed lines go to its /init), with QEMU's
    monitor on a unix socket."""

    def __init__(self, tmp: Path, initrd: Path, balloon: str) -> None:
        self.monitor = tmp / "monitor"
        cmd = qemu_cmd("vmlinuz", "512M", "console=ttyS0 panic=-1 memtest=off end=watch", SMALL)
        cmd[cmd.index("-initrd") + 1] = str(initrd)
        cmd += ["-device", f"virtio-balloon-pci,{balloon}",
                "-monitor", f"unix:{self.monitor},server=on,wait=off"]
        self.q = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace")
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.q.stdout is not None
        for line in iter(self.q.stdout.readline, ""):
            self.lines.append(line)

    def wait(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + TIMEOUT
        while sum(ln.startswith(text) for ln in self.lines) < count:
            assert self.q.poll() is None and time.monotonic() < deadline, "".join(self.lines)[-4000:]
            time.sleep(0.2)

    def reports(self) -> list[Report]:
        parts = "".join(self.lines).split("memvisor-linux 1")[1:]
        return [parse_report("memvisor-linux 1" + part, LINUX) for part in parts if "SUMMARY: " in part]

    def type(self, text: str) -> None:
        assert self.q.stdin is not None
        self.q.stdin.write(text)
        self.q.stdin.flush()

    def hmp(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.monitor))
            s.sendall(command.encode() + b"\n")
            time.sleep(1)
            return s.recv(1 << 16).decode("ascii", "replace")

    def rss(self) -> int:
        status = Path(f"/proc/{self.q.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)[1]) * 1024

    def close(self) -> None:
        self.q.kill()
        self.q.wait()


def held(r: Report) -> int:
    return r.one("balloon").num("held")


@need_qemu
def test_hog_deflates_a_balloon_on_oom(tmp_path: Path) -> None:
    """deflate-on-oom: the balloon takes 384 of 512 MiB, MemTotal stays (no
    adjust_managed_page_count with DEFLATE_ON_OOM); a 256 MiB hog typed on the console runs to
    its end, not OOM-killed, because each OOM deflates the balloon (1 MiB a time) instead."""
    g = Watched(tmp_path, need("initramfs.cpio.gz")[0], "deflate-on-oom=on")
    try:
        g.wait("SUMMARY: ")
        g.hmp("balloon 128")            # the guest's target size in MiB
        g.wait("SUMMARY: ", 2)
        g.type("hog 256M\n")
        g.wait("SUMMARY: ", 3)
        actual = g.hmp("info balloon")
        first, inflated, after = g.reports()[:3]
    finally:
        g.close()
    console = "".join(g.lines)
    assert "hog status=0" in console and "hog size=0x10000000 bad_pages=0" in console, console[-4000:]
    assert held(first) == 0 and held(inflated) == 384 * MiB
    total = first.one("meminfo").num("total")
    assert inflated.one("meminfo").num("total") == after.one("meminfo").num("total") == total
    short = 256 * MiB - inflated.one("meminfo").num("free")
    assert held(inflated) - held(after) >= short, (held(after), short)
    assert f"balloon: actual={(512 * MiB - held(after)) // MiB}" in actual, actual


@need_qemu
def test_freed_hog_goes_back_to_the_host_with_free_page_reporting(tmp_path: Path) -> None:
    """free-page-reporting: the 256 MiB a hog wrote are resident in QEMU, and within 10 s of
    the guest's report after the hog freed them at least half are gone from QEMU's RSS again."""
    g = Watched(tmp_path, need("initramfs.cpio.gz")[0], "free-page-reporting=on")
    try:
        g.wait("SUMMARY: ")
        base = g.rss()
        g.type("hog 256M\n")
        g.wait("hog touched=")
        peak = g.rss()
        g.wait("SUMMARY: ", 2)
        time.sleep(10)
        after = g.rss()
    finally:
        g.close()
    assert peak - base >= 128 * MiB, (base, peak)
    assert peak - after >= 128 * MiB, (peak, after)
    assert "hog status=0" in "".join(g.lines)


# ---- build.py on kernels it must refuse ----

def elf_with_note(name: bytes, ntype: int, desc: bytes) -> bytes:
    """An ELF64 header and one PT_NOTE program header holding one note."""
    note = struct.pack("<III", len(name), len(desc), ntype) + name + bytes(-len(name) % 4) + desc
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, 0x1000000, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 4, 64 + 56, 0, 0, len(note), len(note), 4)
    return header + phdr + note


def bzimage(payload: bytes, setup_sects: int = 1, payload_offset: int = 0x40) -> bytes:
    """A setup header (protocol 2.15) pointing at `payload`, as Documentation/x86/boot.rst lays it out."""
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1f1] = setup_sects
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x20f)
    struct.pack_into("<II", setup, 0x248, payload_offset, len(payload))
    return bytes(setup) + bytes(payload_offset) + payload


def xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ)


PVH_ELF = elf_with_note(b"Xen\0", 18, struct.pack("<I", 0x1000850))
GOOD = bzimage(xz(PVH_ELF))
CORRUPT = bytearray(xz(PVH_ELF * 4))
CORRUPT[len(CORRUPT) // 2] ^= 0xff


def run_build(tmp: Path, image: bytes) -> subprocess.CompletedProcess:
    kdir = tmp / "kernel"
    (kdir / "root" / "boot").mkdir(parents=True)
    (kdir / "root" / "boot" / "vmlinuz-0.0-test").write_bytes(image)
    return subprocess.run([sys.executable, str(BUILD_PY), "--out", str(tmp / "out"),
                           "--kernel-dir", str(kdir)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("image, reason", [
    (b"MZ" + bytes(100), "too short for a bzImage setup header"),
    (PVH_ELF + bytes(1024), "not a bzImage"),
    (GOOD[:-64], "truncated"),
    (bzimage(b"\x1f\x8b" + bytes(64)), "is not XZ"),
    (bzimage(bytes(CORRUPT)), "XZ payload is corrupt"),
    (bzimage(xz(PVH_ELF)[:-40]), "ends before its stream does"),
    (bzimage(xz(b"not an elf" * 10)), "not an ELF file"),
    (bzimage(xz(elf_with_note(b"Xen\0", 17, bytes(4)))), "no Xen PHYS32_ENTRY note"),
], ids=["short", "not-bzimage", "truncated-file", "not-xz", "corrupt-xz", "cut-xz", "not-elf", "no-pvh-note"])
def test_build_refuses_bad_kernel(tmp_path: Path, image: bytes, reason: str) -> None:
    p = run_build(tmp_path, image)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("guests/linux/build.py: ") and reason in lines[0], p.stderr
    assert not (tmp_path / "out" / "vmlinux").exists()
    assert [f.name for f in (tmp_path / "out").iterdir() if f.name.endswith(".tmp")] == []


def test_build_accepts_a_pvh_kernel_and_goes_on(tmp_path: Path) -> None:
    """The positive control of the test above: the same kind of image with the note passes."""
    p = run_build(tmp_path, GOOD)
    assert "vmlinux: built, ELF64, PVH entry 0x01000850" in p.stdout, p.stdout + p.stderr
    assert (tmp_path / "out" / "vmlinux").read_bytes() == PVH_ELF
    # The fake package has no modules: the build stops there, with one line saying so.
    assert p.returncode == 1 and "module virtio_ring is not in" in p.stderr

"""memvisor with a Linux bzImage (vmm/arch/x86/bzimage.c), end to end, and hostile command lines.

Bad --kernel, --initramfs and --cmdline: exit status 1 and one line, before /dev/kvm is opened, so
these run anywhere build/memvisor exists. So are hostile command lines (issue 13): control
characters, long values, flags in value positions, zones on one file or on procfs; each gets one
harmless line naming the option and the reason, and leaves no file behind.

The 64-bit entry state (long mode, __BOOT_CS/__BOOT_DS, interrupts off, rsi = boot_params, the
kernel identity-mapped where code32_start says) is checked by a synthetic kernel of a few
instructions that reports through the exit port; it needs a usable /dev/kvm and is skipped
without one. The kernel's own parts are the cmocka tests' business
(vmm/tests/test_bzimage.c).
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from memvisor.venue import kvm_error

TOP = Path(__file__).resolve().parents[2]
MEMVISOR = TOP / "build" / "memvisor"
PROBE = TOP / "build" / "guests" / "probe.elf"

# At load address + 0x200, in 64-bit mode: a stack of its own at 0x80000 (the protocol gives none),
# then exit with 1 if CS != 0x10, 2 if SS or DS != 0x18, 3 if IF is set, 4 if rsi is not
# boot_params ("HdrS" at 0x202), 5 if it does not run at code32_start + 0x200; else with
# cmdline[0] + boot_params.e820_entries (guests/README.md: the exit port 0xf4).
ENTRY_CODE = bytes.fromhex(
    "bc00000800bf01000000668cc86683f810756cbf02000000668cd06683f818755e668cd86683f8187555"
    "bf030000009c58a9000200007547bf0400000081be02020000486472537536bf05000000488d05000000"
    "008b8e140200004829c8483d550200007519bf060000008b9e280200000fb6030fb68ee801000001c889"
    "c789f866baf400eff4")


def bzimage(version: int = 0x020F, pref: int = 0x1000000, cmdline_size: int = 255) -> bytes:
    """One setup sector and a 4 KiB kernel: the header fields the loader reads, nothing else."""
    setup = bytearray(1024)
    setup[0x1F1] = 1
    struct.pack_into("<IHH", setup, 0x1F4, 4096 // 16, 0, 0)
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200:0x206] = b"\xeb\x6aHdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = 0x01                                         # LOADED_HIGH
    struct.pack_into("<IIB", setup, 0x22C, 0x7FFFFFFF, 0x200000, 1)
    struct.pack_into("<HI", setup, 0x236, 0x01, cmdline_size)   # XLF_KERNEL_64
    struct.pack_into("<QI", setup, 0x258, pref, 0x10000)        # pref_address, init_size
    kernel = bytearray(4096)
    kernel[0x200:0x200 + len(ENTRY_CODE)] = ENTRY_CODE
    return bytes(setup + kernel)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if not MEMVISOR.exists():
        pytest.skip("build/memvisor missing: run `make` first")
    return subprocess.run([str(MEMVISOR), "--serial", "off", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=cwd,
                          errors="backslashreplace")


def refused(p: subprocess.CompletedProcess[str], start: str) -> None:
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("memvisor: " + start), p.stderr


def test_bad_input(tmp_path: Path) -> None:
    neither = tmp_path / "neither"
    neither.write_text("#!/bin/sh\n")
    refused(run("--memory", "size=64M", "--kernel", str(neither)),
            f"--kernel: '{neither}' is neither an ELF image with a PVH note nor a Linux bzImage")

    old = tmp_path / "old.bzImage"
    old.write_bytes(bzimage(version=0x020B))
    refused(run("--memory", "size=64M", "--kernel", str(old)),
            f"--kernel: '{old}' is a bzImage of boot protocol 2.11: the 64-bit entry needs 2.12")

    ok = tmp_path / "ok.bzImage"
    ok.write_bytes(bzimage())
    refused(run("--memory", "size=16M", "--kernel", str(ok)),
            f"--kernel: '{ok}' needs 0x10000 bytes (init_size) of RAM at 0x1000000")
    refused(run("--memory", "size=64M", "--kernel", str(ok), "--cmdline", "x" * 256),
            "--cmdline: 256 bytes, this kernel takes at most 255 (its cmdline_size)")

    initrd = tmp_path / "initrd"
    with initrd.open("wb") as f:
        f.truncate(48 * 1024 * 1024 - 0x10000 + 1)  # one byte more than above the kernel
    refused(run("--memory", "size=64M", "--kernel", str(ok), "--initramfs", str(initrd)),
            "--initramfs: 50266113 bytes do not fit in the first RAM range above the kernel and "
            "below initrd_addr_max 0x7fffffff")


@pytest.mark.parametrize("pref,cmdline", [(0x1000000, "A"), (0x1100000, "B")])
def test_64bit_entry_state(tmp_path: Path, pref: int, cmdline: str) -> None:
    if kvm_error() is not None:
        pytest.skip("no usable /dev/kvm (ci/testhost runs this suite where there is one)")
    kernel = tmp_path / "entry.bzImage"
    kernel.write_bytes(bzimage(pref=pref))
    p = run("--memory", "size=64M", "--kernel", str(kernel), "--cmdline", cmdline)
    # [0, 640K) RAM, [640K, 1M) reserved, [1M, 64M) RAM: three E820 entries
    assert p.returncode == ord(cmdline) + 3, (p.returncode, p.stderr)


def hostile_line(name: str, d: Path) -> tuple[list[str], str, str]:
    """(arguments, option, reason) of a command line found to misbehave (issue 13); files in d."""
    kernel = ["--kernel", str(PROBE)]
    zones = ["--memory", "size=0", "--memory-zone"]
    (d / "f").write_bytes(b"")
    os.link(d / "f", d / "hard")
    os.mkfifo(d / "fifo")
    return {
        "same-file-hard-link": (
            [*kernel, *zones, f"id=a,size=128M,shared=on,file={d}/f",
             f"id=b,size=128M,shared=on,file={d}/hard"], "--memory-zone",
            "is the file of zone 'a' too"),
        "same-new-file": (
            [*kernel, *zones, f"id=a,size=128M,shared=on,file={d}/new",
             f"id=b,size=128M,shared=on,file={d}/./new"], "--memory-zone",
            "is the file of zone 'a' too"),
        "proc-self-mem": (
            [*kernel, *zones, f"id=a,size=128M,prefault=on,file={d}/new",
             "id=b,size=128M,file=/proc/self/mem"], "--memory-zone", "on procfs"),
        "newline-in-id": ([*kernel, *zones, "id=a\nb,size=128M"], "--memory-zone",
                          "use letters, digits"),
        "escapes-in-value": ([*kernel, "--memory", "size=\x1b[2J\x1b]0;title\x07\x9b1A"],
                             "--memory", "not a size"),
        "long-file": ([*kernel, *zones, f"id=a,size=128M,file={d}/{'x' * 300}"],
                      "--memory-zone", "File name too long"),
        "long-id": ([*kernel, *zones, f"id={'x' * 10000},size=128M"], "--memory-zone",
                    "is longer than 63 characters"),
        "kernel-fifo": (["--kernel", f"{d}/fifo", "--memory", "size=64M"], "--kernel",
                        "is not a non-empty regular file"),
        "long-kernel-path": (["--kernel", f"{d}/{'y' * 5000}", "--memory", "size=64M"],
                             "--kernel", "File name too long"),
        "kernel-dash-h": (["--kernel", "-h", "--memory", "size=64M"], "--kernel",
                          "cannot open '-h'"),
        "layout-long-cmdline": (["--memory", "size=64M", "--cmdline", "x" * 70000,
                                 "--print-layout"], "--cmdline", "70000 bytes, at most 65535"),
        "cpus-boot-256": ([*kernel, "--cpus", "boot=256"], "--cpus",
                          "boot=256 is above the maximum of 255"),
    }[name]


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.mark.parametrize("name", [
    "same-file-hard-link", "same-new-file", "proc-self-mem", "newline-in-id", "escapes-in-value",
    "long-file", "long-id", "kernel-fifo", "long-kernel-path", "kernel-dash-h",
    "layout-long-cmdline", "cpus-boot-256"])
def test_hostile_command_line(tmp_path: Path, name: str) -> None:
    """Status 1, one line naming the option and the reason, nothing to a terminal, no file left."""
    if not PROBE.exists():
        pytest.skip("build/guests/probe.elf missing: run `make` first")
    args, option, reason = hostile_line(name, tmp_path)
    before = listing(tmp_path)
    p = run(*args, cwd=tmp_path)
    assert p.returncode == 1, p.stderr[:300]
    assert p.stderr.endswith("\n") and p.stderr.count("\n") == 1, p.stderr[:300]
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", p.stderr[:-1]), p.stderr[:300]
    assert p.stderr.startswith(f"memvisor: {option}: ") and reason in p.stderr, p.stderr[:300]
    assert len(p.stderr) < 400, p.stderr
    assert listing(tmp_path) == before


def test_flags_are_not_values(tmp_path: Path) -> None:
    """-v after --cmdline is the command line, not --verbose: the layout is printed, quietly."""
    p = run("--memory", "size=64M", "--cmdline", "-v", "--print-layout", cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == "" and p.stdout.startswith("{"), p.stderr

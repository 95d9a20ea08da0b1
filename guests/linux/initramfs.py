"""The Linux guest's initramfs: a newc cpio written here, and the modules it loads.

Written by Python rather than `cpio -o` from a staging directory, so that /dev/console can be a
character-device entry without root or mknod (the kernel opens it for /init's stdio before
anything is mounted), and so that the image is byte-for-byte reproducible (no mtimes, fixed
inode numbers).
"""
from __future__ import annotations

import gzip
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

# virtio_mmio for memvisor's devices, virtio_pci for QEMU's (virtio-mem-pci, virtio-balloon-pci:
# make conformance-compare boots this initramfs under both VMMs).
MODULES = ("virtio_ring", "virtio", "virtio_mmio", "virtio_pci", "virtio_mem", "virtio_balloon")
TRAILER = "TRAILER!!!"


class ModuleError(ValueError):
    """A module or one of its dependencies is missing, or modinfo failed."""


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(name: str) -> Entry:
    return Entry(name, stat.S_IFDIR | 0o755)


def file(name: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(name, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, stat.S_IFLNK | 0o777, target.encode())


def chardev(name: str, major: int, minor: int) -> Entry:
    return Entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad4(out: bytearray) -> None:
    out.extend(bytes(-len(out) % 4))


def newc(entries: list[Entry]) -> bytes:
    """The "070701" format of the kernel's initramfs unpacker (Documentation/driver-api/early-userspace)."""
    out = bytearray()
    for ino, e in enumerate([*entries, Entry(TRAILER, 0)], start=1):
        name = e.name.encode() + b"\0"
        fields = (ino, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, *e.rdev, len(name), 0)
        out.extend(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + name)
        _pad4(out)
        out.extend(e.data)
        _pad4(out)
    return bytes(out)


def gzipped(archive: bytes) -> bytes:
    return gzip.compress(archive, compresslevel=6, mtime=0)


def module_paths(moddir: Path) -> dict[str, Path]:
    """Every .ko under moddir by module name (file names may use '-' where names use '_')."""
    return {p.stem.replace("-", "_"): p for p in sorted(moddir.rglob("*.ko"))}


def depends(ko: Path) -> list[str]:
    try:
        out = subprocess.run(["modinfo", "-F", "depends", str(ko)], capture_output=True,
                             text=True, check=True).stdout
    except FileNotFoundError:
        raise ModuleError("modinfo is missing: install kmod (ci/deps.sh)") from None
    except subprocess.CalledProcessError as e:
        raise ModuleError(f"modinfo {ko.name}: {e.stderr.strip() or e.returncode}") from None
    return [d.replace("-", "_") for d in out.strip().split(",") if d]


def load_order(moddir: Path, wanted: tuple[str, ...] = MODULES) -> list[tuple[str, Path]]:
    """The wanted modules and what they depend on, each after its dependencies."""
    paths = module_paths(moddir)
    order: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name not in paths:
            raise ModuleError(f"module {name} is not in {moddir}")
        for dep in depends(paths[name]):
            visit(dep)
        order.append((name, paths[name]))

    for name in wanted:
        visit(name)
    return order


def image(busybox: bytes, helper: bytes, init: bytes, modules: list[tuple[str, Path]]) -> bytes:
    """The gzipped cpio: busybox, the report helper, /init, /modules/*.ko and /modules/order."""
    entries = [directory(d) for d in ("bin", "dev", "proc", "sys", "modules")]
    entries += [chardev("dev/console", 5, 1),
                file("bin/busybox", busybox, executable=True),
                symlink("bin/sh", "busybox"),
                file("bin/report", helper, executable=True),
                file("init", init, executable=True)]
    entries += [file(f"modules/{name}.ko", path.read_bytes()) for name, path in modules]
    entries.append(file("modules/order", "".join(f"{name}\n" for name, _ in modules).encode()))
    return gzipped(newc(entries))

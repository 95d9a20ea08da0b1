"""Build the Linux guest: Debian's kernel and an initramfs of Debian binaries.

    /usr/bin/python3 guests/linux/build.py [--out build/linux] [--kernel-dir DIR]

Products in --out: vmlinuz (the package's bzImage), vmlinux (its ELF, for PVH boot), report
(the static report helper) and initramfs.cpio.gz. Each is rebuilt only when one of its inputs
changed (the digest of the inputs and of this script is kept in stamps.json) and renamed into place when complete, so an
interrupted build never leaves a product that looks finished. One line per product on stdout;
a failure is one line on stderr and status 1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import bzimage
import initramfs

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
PROG = "guests/linux/build.py"
BUSYBOX = Path("/bin/busybox")
HELPER_CFLAGS = ["-static", "-O2", "-Wall", "-Wextra", "-Werror"]


class BuildError(Exception):
    """A one-line reason the build cannot go on."""


def kernel_dir() -> Path:
    """The unpacked kernel package, fetched once by ci/fetch-kernel (its messages go to stderr)."""
    p = subprocess.run([str(TOP / "ci" / "fetch-kernel")], stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise BuildError(f"ci/fetch-kernel failed (status {p.returncode})")
    return Path(p.stdout.strip())


def kernel_image(kdir: Path) -> Path:
    images = sorted((kdir / "root" / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise BuildError(f"{kdir}/root/boot: {len(images)} vmlinuz-* files, expected one")
    return images[0]


def digest(*inputs: Path | bytes | str) -> str:
    h = hashlib.sha256()
    for item in inputs:
        data = item.read_bytes() if isinstance(item, Path) else \
            item.encode() if isinstance(item, str) else item
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Cache:
    """Which inputs each product was built from, and the note printed for it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.recipe = digest(Path(__file__).resolve())   # how every product is made
        self.file = out / "stamps.json"
        try:
            self.stamps = json.loads(self.file.read_text())
        except (OSError, ValueError):
            self.stamps = {}

    def product(self, name: str, inputs: str, make: Callable[[Path], str]) -> Path:
        """Runs make(tmp) unless `name` exists and was made from `inputs`; make returns a note."""
        target = self.out / name
        inputs = digest(inputs, self.recipe)
        old = self.stamps.get(name, {})
        if target.exists() and old.get("inputs") == inputs:
            print(f"{shown(target)}: up to date, {old.get('note', '')}")
            return target
        tmp = target.with_name(f".{name}.tmp")
        try:
            note = make(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.stamps[name] = {"inputs": inputs, "note": note}
        write_atomically(self.file, json.dumps(self.stamps, indent=1, sort_keys=True).encode())
        print(f"{shown(target)}: built, {note}")
        return target


def copy_vmlinuz(src: Path) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        shutil.copyfile(src, tmp)
        return f"{src.name}, {tmp.stat().st_size} bytes"
    return make


def extract_vmlinux(src: Path) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        try:
            entry = bzimage.extract_vmlinux(src, tmp)
        except bzimage.ImageError as e:
            raise BuildError(f"{shown(src)}: {e}") from None
        return f"ELF64, PVH entry {entry:#010x}"
    return make


def compile_helper(source: Path) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        cmd = ["gcc", *HELPER_CFLAGS, "-o", str(tmp), str(source)]
        try:
            status = subprocess.run(cmd).returncode
        except FileNotFoundError:
            raise BuildError("gcc is missing: install build-essential (ci/deps.sh)") from None
        if status != 0:
            raise BuildError(f"compiling {shown(source)} failed (gcc status {status})")
        return f"static, {tmp.stat().st_size} bytes"
    return make


def pack_initramfs(helper: Path, init: Path, modules: list[tuple[str, Path]]) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        tmp.write_bytes(initramfs.image(BUSYBOX.read_bytes(), helper.read_bytes(),
                                        init.read_bytes(), modules))
        return f"modules {' '.join(n for n, _ in modules)}, {tmp.stat().st_size} bytes"
    return make


def static_busybox() -> Path:
    try:
        if bzimage.is_static(BUSYBOX):
            return BUSYBOX
    except (OSError, bzimage.ImageError):
        pass
    raise BuildError(f"{BUSYBOX} is missing or not static: install busybox-static (ci/deps.sh)")


def build(out: Path, kdir: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cache = Cache(out)
    vmlinuz = kernel_image(kdir)
    kver = vmlinuz.name.removeprefix("vmlinuz-")
    cache.product("vmlinuz", digest(vmlinuz), copy_vmlinuz(vmlinuz))
    cache.product("vmlinux", digest(vmlinuz, HERE / "bzimage.py"), extract_vmlinux(vmlinuz))
    source = HERE / "report.c"
    helper = cache.product("report", digest(source, " ".join(HELPER_CFLAGS)), compile_helper(source))
    busybox = static_busybox()
    try:
        modules = initramfs.load_order(kdir / "root" / "lib" / "modules" / kver)
    except initramfs.ModuleError as e:
        raise BuildError(str(e)) from None
    init = HERE / "init"
    inputs = digest(busybox, helper, init, HERE / "initramfs.py",
                    *(item for name, path in modules for item in (name, path)))
    cache.product("initramfs.cpio.gz", inputs, pack_initramfs(helper, init, modules))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=TOP / "build" / "linux",
                    help="where the products go [build/linux]")
    ap.add_argument("--kernel-dir", type=Path,
                    help="an unpacked kernel package (DIR/root/boot/vmlinuz-*) [ci/fetch-kernel]")
    args = ap.parse_args(argv)
    try:
        build(args.out, args.kernel_dir or kernel_dir())
    except (BuildError, OSError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

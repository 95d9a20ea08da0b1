"""The backings of vmm/memory/backings.def and the memvisor options that select each one.

The same rule as bench/native.c: `--memory size=N,<options>` when --memory accepts every option
of the backing, else `--memory size=0,<memory-only options> --memory-zone id=mem0,size=N,<rest>`
(file= is a zone option). PATH is replaced by the directory given, which memvisor turns into an
unlinked temporary file.
"""
from __future__ import annotations

from pathlib import Path

from memvisor import optionspec
from memvisor.driver import VmConfig
from memvisor.optionspec import Backing
from memvisor.sizes import format_size

GiB = 1 << 30


def all_backings() -> tuple[Backing, ...]:
    return optionspec.backings()


def names() -> list[str]:
    return [b.name for b in all_backings()]


def by_name(name: str) -> Backing:
    for b in all_backings():
        if b.name == name:
            return b
    raise KeyError(f"no backing {name!r} in backings.def (have {', '.join(names())})")


def guest_size(b: Backing, wanted: int) -> int:
    """`wanted` rounded up to the backing's page size (hugetlb_1g needs whole 1 GiB pages)."""
    page = b.page_size or 4096
    return -(-wanted // page) * page


def memvisor_args(b: Backing, size: int, path_dir: str, prefault: bool = False) -> list[str]:
    """--memory (and --memory-zone) arguments that make memvisor use backing `b`."""
    memory_keys = {o.name for o in optionspec.group_options("MEMORY")}
    zone_keys = {o.name for o in optionspec.group_options("ZONE")}
    opts = [(k, path_dir if v == "PATH" else v) for k, v in b.selectors]
    if prefault:
        opts.append(("prefault", "on"))
    if all(k in memory_keys for k, _ in opts):
        return ["--memory", ",".join([f"size={format_size(size)}"] + [f"{k}={v}" for k, v in opts])]
    mem = [f"{k}={v}" for k, v in opts if k not in zone_keys]
    zone = [f"{k}={v}" for k, v in opts if k in zone_keys]
    return ["--memory", ",".join(["size=0"] + mem),
            "--memory-zone", ",".join([f"id=mem0,size={format_size(size)}"] + zone)]


def vm_config(b: Backing, size: int, path_dir: str, kernel: Path, cmdline: str,
              prefault: bool = False) -> VmConfig:
    """The configuration of memvisor_args as a VmConfig: what memvisor is given, and what
    memvisor.qemuargs translates into the same backing for QEMU (bench/qemu.py)."""
    args = memvisor_args(b, size, path_dir, prefault)
    pairs = list(zip(args[::2], args[1::2]))
    return VmConfig(memory=pairs[0][1], zones=[v for k, v in pairs[1:] if k == "--memory-zone"],
                    kernel=kernel, cmdline=cmdline)

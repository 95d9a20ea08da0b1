"""Drivers: how to start a VMM for a configuration, independent of the cases that use them.

A configuration is given in Cloud Hypervisor's terms (the memvisor and cloud-hypervisor command
lines are the same); a driver turns it into an argv and knows how to read the guest's exit code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
BUILD = TOP / "build"


@dataclass
class VmConfig:
    memory: str | None = "size=128M"          # --memory value, None for the default
    zones: list[str] = field(default_factory=list)   # one --memory-zone value each
    numa: list[str] = field(default_factory=list)    # one --numa value each
    cpus: str = "boot=1"
    kernel: Path = BUILD / "guests" / "probe.elf"
    cmdline: str = ""
    balloon: str | None = None
    initramfs: Path | None = None
    api_socket: str | None = None

    def ch_args(self) -> list[str]:
        """The Cloud-Hypervisor-style options, shared by memvisor and cloud-hypervisor."""
        args: list[str] = []
        if self.memory is not None:
            args += ["--memory", self.memory]
        for z in self.zones:
            args += ["--memory-zone", z]
        for n in self.numa:
            args += ["--numa", n]
        args += ["--cpus", self.cpus, "--kernel", str(self.kernel)]
        if self.cmdline:
            args += ["--cmdline", self.cmdline]
        if self.initramfs:
            args += ["--initramfs", str(self.initramfs)]
        if self.balloon:
            args += ["--balloon", self.balloon]
        if self.api_socket:
            args += ["--api-socket", f"path={self.api_socket}"]
        return args


class Driver:
    name = "abstract"

    def command(self, cfg: VmConfig) -> list[str]:
        raise NotImplementedError

    def guest_exit_code(self, status: int) -> int:
        """The code the guest wrote to the exit port, from the VMM's exit status."""
        return status


class MemvisorDriver(Driver):
    name = "memvisor"

    def __init__(self, binary: Path | None = None) -> None:
        # MEMVISOR_BIN: check another build (a sanitizer build, an older binary) with the same cases.
        self.binary = binary or Path(os.environ.get("MEMVISOR_BIN", BUILD / "memvisor"))

    def command(self, cfg: VmConfig) -> list[str]:
        return [str(self.binary), "-v", "--serial", "tty", *cfg.ch_args()]

    def layout_command(self, cfg: VmConfig) -> list[str]:
        return [str(self.binary), *cfg.ch_args(), "--print-layout"]


class CloudHypervisorDriver(MemvisorDriver):
    """Same command line; its exit codes differ (no exit port), so only reports are compared."""
    name = "cloud-hypervisor"

    def command(self, cfg: VmConfig) -> list[str]:
        return [str(self.binary), "--serial", "tty", "--console", "off", *cfg.ch_args()]


class QemuDriver(Driver):
    """QEMU with PVH boot: memory as one backend per zone, NUMA from --numa."""
    name = "qemu"

    def __init__(self, accel: str = "kvm") -> None:
        self.accel = accel

    def command(self, cfg: VmConfig) -> list[str]:
        from .sizes import parse_size  # local: sizes is tiny and only QEMU needs it here
        boot = int(dict(kv.split("=") for kv in cfg.cpus.split(",")).get("boot", "1"))
        args = ["qemu-system-x86_64", "-machine", "q35", "-accel", self.accel, "-cpu", "max",
                "-smp", str(boot), "-nodefaults", "-display", "none", "-no-reboot",
                "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-kernel", str(cfg.kernel)]
        if cfg.cmdline:
            args += ["-append", cfg.cmdline]
        opts = dict(kv.split("=", 1) for kv in (cfg.memory or "size=512M").split(","))
        args += ["-m", f"{parse_size(opts['size']) // (1 << 20)}M"]
        return args

    def guest_exit_code(self, status: int) -> int:
        return status >> 1  # isa-debug-exit: (code << 1) | 1

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
    stop_status = 128 + 15   # the VMM's exit status when the harness stops a held guest

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
    """QEMU 7.2 with PVH boot (-kernel), the configuration as qemuargs translates it. The
    guest's exit port is isa-debug-exit; QMP on a unix socket for queries and resizes."""
    name = "qemu"
    stop_status = 0     # QEMU ends with 0 on SIGTERM ("terminating on signal 15")

    def __init__(self, accel: str = "kvm", binary: str | None = None) -> None:
        self.accel = accel
        self.binary = binary or os.environ.get("QEMU", "qemu-system-x86_64")

    def head(self, cfg: VmConfig, qmp: str | None = None) -> list[str]:
        args = [self.binary, "-machine", "q35", "-accel", self.accel,
                "-cpu", "host" if self.accel == "kvm" else "max", "-nodefaults",
                "-display", "none", "-no-reboot", "-serial", "stdio",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", str(cfg.kernel)]
        if cfg.initramfs:
            args += ["-initrd", str(cfg.initramfs)]
        if cfg.cmdline:
            args += ["-append", cfg.cmdline]
        if qmp:
            args += ["-qmp", f"unix:{qmp},server=on,wait=off"]
        return args

    def command(self, cfg: VmConfig, qmp: str | None = None) -> list[str]:
        from .qemuargs import NotApplicable, translate   # qemuargs imports this module
        t = translate(cfg)
        if isinstance(t, NotApplicable):
            raise ValueError(f"QEMU cannot express this configuration: {t.reason}")
        return self.head(cfg, qmp) + t.args

    def guest_exit_code(self, status: int) -> int:
        return status >> 1  # isa-debug-exit: (code << 1) | 1

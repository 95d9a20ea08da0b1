"""What each resize request must do, from the spec and Cloud Hypervisor's API alone.

A ResizeModel starts from the oracle's Expectation of a configuration and plays the requests of
a sequence: each answer (accepted or refused) and the memory the guest must then have. Sizes are
Cloud Hypervisor's: vm.resize's desired_ram is the whole RAM (boot RAM + hotplugged memory),
vm.resize-zone's is the zone's (size + its virtio-mem memory), desired_balloon the balloon's.

Rules (Cloud Hypervisor vmm/src/memory_manager.rs, virtio-devices/src/mem.rs; the issue's
choices where CH is silent or silently ignores a request):
- virtio-mem memory moves in blocks of 2 MiB, or of the zone's huge page size when larger;
  a zone's plugged memory is within [0, hotplug_size].
- vm.resize with virtio-mem resizes the zone of `--memory size=N` (mem0); with memory zones
  (`--memory size=0`) it is refused: zones are resized with vm.resize-zone.
- ACPI hotplug only grows, in steps of 128 MiB, into at most 8 DIMM slots and the area of
  hotplug_size; asking for the current size changes nothing. Shrinking is refused.
- The balloon (vm.resize desired_balloon) exists only with --balloon; its size is whole 4 KiB
  pages and at most the VM's RAM. memory_actual_size (vm.info) is the RAM less the balloon.
- A refused request changes nothing.
- What Linux counts in MemTotal (`memtotal`): the RAM less the balloon, except with
  deflate_on_oom: Linux 6.1's virtio_balloon then leaves the pages it inflates counted as managed
  (fill_balloon and release_pages_balloon call adjust_managed_page_count only without
  VIRTIO_BALLOON_F_DEFLATE_ON_OOM, drivers/virtio/virtio_balloon.c:240-242 and 261-263 of
  Debian's linux-source-6.1 6.1.192), so MemTotal keeps the whole RAM while the balloon holds
  pages; only /proc/vmstat's balloon_inflate/balloon_deflate show them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .oraclemodel import Expectation, VIRTIO_MEM_BLOCK

MiB = 1 << 20
ACPI_STEP = 128 * MiB
ACPI_SLOTS = 8          # Cloud Hypervisor's HOTPLUG_COUNT
OK, REFUSED = 204, 400


@dataclass
class ResizeModel:
    exp: Expectation
    virtio_mem: bool
    plugged: dict[str, int] = field(default_factory=dict)   # zone id -> virtio-mem bytes
    dimms: list[int] = field(default_factory=list)          # sizes of the ACPI DIMMs, in order
    balloon: int = 0                                        # the balloon's target in bytes
    deflate_on_oom: bool = False                            # --balloon deflate_on_oom=on

    def __post_init__(self) -> None:
        for z in self.exp.zones:
            if z.hotplug_size:
                self.plugged[z.zone] = z.hotplugged_size
        self.balloon = self.exp.balloon_size or 0

    def block(self, zone: str) -> int:
        return max(VIRTIO_MEM_BLOCK, self.exp.zone(zone).page_size)

    @property
    def acpi_area(self) -> int:
        return sum(h.size for h in self.exp.hotplug if h.kind == "acpi-hotplug")

    @property
    def ram(self) -> int:
        return self.exp.boot_ram + sum(self.plugged.values()) + sum(self.dimms)

    def resize(self, desired_ram: int) -> int:
        """vm.resize with desired_ram: the HTTP status it must get."""
        if self.virtio_mem:
            if "mem0" not in self.plugged or not any(z.zone == "mem0" for z in self.exp.zones):
                return REFUSED
            return self.resize_zone("mem0", desired_ram)
        if not self.acpi_area:
            return REFUSED
        grow = desired_ram - self.ram
        if grow < 0 or grow % ACPI_STEP or sum(self.dimms) + grow > self.acpi_area:
            return REFUSED
        if grow and len(self.dimms) == ACPI_SLOTS:
            return REFUSED
        if grow:
            self.dimms.append(grow)
        return OK

    def resize_zone(self, zone: str, desired_ram: int) -> int:
        z = next((z for z in self.exp.zones if z.zone == zone), None)
        if z is None or not z.hotplug_size or desired_ram < z.boot_size:
            return REFUSED
        want = desired_ram - z.boot_size
        if want > z.hotplug_size or want % self.block(zone):
            return REFUSED
        self.plugged[zone] = want
        return OK

    def resize_balloon(self, desired: int) -> int:
        if self.exp.balloon_size is None or desired % 4096 or desired > self.ram:
            return REFUSED
        self.balloon = desired
        return OK

    def snapshot(self) -> dict:
        return {"plugged": dict(self.plugged), "dimms": list(self.dimms), "ram": self.ram,
                "balloon": self.balloon, "actual": self.ram - self.balloon,
                "memtotal": self.ram - (0 if self.deflate_on_oom else self.balloon)}

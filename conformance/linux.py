"""Linux cases: Debian's own kernel with the project's initramfs (guests/linux/) under memvisor.

What Linux makes of a configuration is what users see: its nodes, the CPUs and memory of each,
the distances, the memory blocks and the hotpluggable ranges it took from SRAT. The guest's /init
writes a `memvisor-linux 1` report and then ends the way the case asks (the `end=` word of its
command line): `hold` (halt until the harness has sampled the host and sent SIGTERM, so that the
host checks of the probe cases apply too), `poweroff` (ACPI S5: status 0), `reboot` (the FADT's
reset register by default, the i8042 with reboot=k: status 4) or `panic` (with reboot=t Linux
triple-faults instead of resetting: status 2 and the registers on stderr).

Expectations come from the same oracle as the probe's; only the reading differs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from memvisor.driver import BUILD, VmConfig
from memvisor.oracle import Expectation
from memvisor.report import Report, ReportError, parse_report

LINUX_DIR = BUILD / "linux"
KERNELS = {"bzimage": LINUX_DIR / "vmlinuz", "pvh": LINUX_DIR / "vmlinux"}
INITRAMFS = LINUX_DIR / "initramfs.cpio.gz"
# panic=-1: a panic reboots at once (through the ACPI reset register: status 4, not a hang).
CMDLINE = "console=ttyS0 panic=-1 memtest=16M"
CASE_TIMEOUT_S = 300   # a boot to the report takes 16-60 s in the test host
# In the test host, memvisor runs Linux with kvm_pv_eoi=off (QEMU: kvm-pv-eoi=off): in_testhost.
# QEMU's TCG (7.2 and 10.0 alike) delivers an interrupt that nested KVM injected a second time
# when an exit request reaches the vCPU before the guest's next #VMEXIT: helper_vmrun leaves
# cs->exception_index at the injected vector (target/i386/tcg/system/svm_helper.c,
# SVM_EVTINJ_TYPE_INTR), and cpu_handle_exception (accel/tcg/cpu-exec.c) raises it again as an
# exception, whatever the guest's IF. The stack memvisor -v printed for hung boots: the timer
# interrupt taken inside the timer interrupt, deadlocked on timekeeper_lock (QEMU 7.2), or on a
# runqueue lock during a secondary CPU's bring-up (QEMU 10). With KVM's paravirtual EOI the
# guest acknowledges without an exit, so the window stays open for the whole handler, locks
# taken; without it the EOI, the handler's first act, exits and closes it. Measured (issue 10
# note, QEMU 10, two test-host CPUs, the 20 Linux cases): PV EOI on, 3 hung boots in 17 and the
# test host froze; off, 1 hung boot in 21 (a shell that never ran its typed `poweroff -f`).
# A hung boot is still booted again, up to ATTEMPTS times, and every hung attempt is kept with
# the case (where its vCPUs were, the stack, the console's end).
TESTHOST_CPUS = "kvm_pv_eoi=off"
TESTHOST_QEMU_CPU = "kvm-pv-eoi=off"
# Silence is normal before Linux's console starts: memvisor's prefault of guest RAM, then the
# kernel's early PCI scans (AGP aperture: two exits per config read); on a loaded machine that
# took over 60 s once (the vCPU was in read_pci_config <- search_agp_bridge, IF=0, no output).
IDLE_S = 120
ATTEMPTS = 3

END_STATUS = {"poweroff": 0, "reboot": 4, "panic": 2, "shell": 0}
# end=shell: Debian's kernel with the debian-installer's netboot initrd (ci/fetch-initrd), its
# busybox sh as init on the serial console. Once the shell says it is up, the harness types
# SHELL_INPUT: what Linux made of the NUMA configuration, then `poweroff -f` (status 0).
FOREIGN_INITRAMFS = LINUX_DIR / "debian-installer-initrd.gz"
SHELL_CMDLINE = "console=ttyS0 panic=-1 rdinit=/bin/sh"
SHELL_UP = "job control turned off"
# Typed until its answer shows (inhost._type): the shell then reads what is typed. Seen under
# QEMU in the test host: the first lines of SHELL_INPUT lost, `poweroff -f` run.
SHELL_READY = {"text": "echo FOREIGN-READY\n", "line": "^FOREIGN-READY"}
SHELL_INPUT = ("mount -t sysfs sysfs /sys\n"
               "echo FOREIGN online=$(cat /sys/devices/system/node/online)\n"
               "for n in /sys/devices/system/node/node[0-9]*; do "
               "echo FOREIGN ${n##*/} cpus=$(cat $n/cpulist) distance=$(cat $n/distance); done\n"
               "poweroff -f\n")
_FOREIGN_ONLINE = re.compile(r"^FOREIGN online=(\S+)\s*$", re.M)
_FOREIGN_NODE = re.compile(r"^FOREIGN node(\d+) cpus=(\S*) distance=([\d ]+?)\s*$", re.M)
SIGTERM_STATUS = 143
# Linux keeps part of each node's RAM for itself (the kernel image, struct pages, per-CPU areas,
# the 64 MiB swiotlb buffer, which memblock takes from the highest RAM below 4 GiB, whichever
# node that is): a node's MemTotal is at most its RAM, and short of it by at most this much
# (a 256 MiB node was seen at 141 MiB with a virtio-mem area beside it).
MAX_KERNEL_SHARE, MAX_KERNEL_BYTES = 0.30, 160 << 20


@dataclass(frozen=True)
class LinuxCase:
    name: str
    memory: str | None
    zones: tuple[str, ...] = ()
    numa: tuple[str, ...] = ()
    cpus: str = "boot=1"
    boot: str = "bzimage"        # KERNELS key
    end: str = "hold"            # hold, poweroff, reboot, panic or shell
    cmdline: str = ""            # extra words


# Node 1 has memory and no CPU: Linux brings it online as a memory-only node.
_NUMA2 = ("guest_numa_id=0,cpus=0,distances=[1@20],memory_zones=mem0",
          "guest_numa_id=1,distances=[0@20],memory_zones=mem1")
_ZONES2 = ("id=mem0,size=512M", "id=mem1,size=512M")
# A vCPU on each node: every boot vCPU online, each on its node.
_NUMA2_SMP = ("guest_numa_id=0,cpus=0,distances=[1@20],memory_zones=mem0",
              "guest_numa_id=1,cpus=1,distances=[0@20],memory_zones=mem1")

CASES = (
    LinuxCase("linux-default", "size=512M"),
    LinuxCase("linux-pvh-default", "size=512M", boot="pvh"),
    LinuxCase("linux-numa2", "size=0", _ZONES2, _NUMA2_SMP, cpus="boot=2"),
    LinuxCase("linux-numa3-asym", "size=0",
              ("id=mem0,size=256M", "id=mem1,size=384M", "id=mem2,size=256M"),
              ("guest_numa_id=0,cpus=0,distances=[1@15,2@25],memory_zones=mem0",
               "guest_numa_id=1,distances=[2@30],memory_zones=mem1",
               "guest_numa_id=2,distances=[0@40],memory_zones=mem2")),
    LinuxCase("linux-virtio-mem-numa", "size=0,hotplug_method=virtio-mem",
              ("id=mem0,size=512M,hotplug_size=256M", "id=mem1,size=256M,hotplug_size=512M"),
              _NUMA2),
    LinuxCase("linux-acpi-hotplug-numa", "size=0,hotplug_size=1G", _ZONES2, _NUMA2),
    LinuxCase("linux-hugetlb-2m-nodes", "size=0",
              ("id=mem0,size=256M,hugepages=on,hugepage_size=2M,host_numa_node=0",
               "id=mem1,size=256M,hugepages=on,hugepage_size=2M,host_numa_node=1"), _NUMA2),
    LinuxCase("linux-shared-prefault", "size=512M,shared=on,prefault=on"),
    LinuxCase("linux-poweroff", "size=0", _ZONES2, _NUMA2, end="poweroff"),
    LinuxCase("linux-pvh-poweroff", "size=0", _ZONES2, _NUMA2, boot="pvh", end="poweroff"),
    LinuxCase("linux-reboot", "size=512M", end="reboot"),
    LinuxCase("linux-reboot-kbd", "size=512M", end="reboot", cmdline="reboot=k"),
    LinuxCase("linux-panic", "size=512M", end="panic", cmdline="reboot=t"),
    # Someone else's initramfs (issue 10): the debian-installer's, its busybox shell as init;
    # the harness types the commands (SHELL_INPUT) and Linux powers off.
    LinuxCase("linux-foreign-initrd", "size=0", _ZONES2, _NUMA2_SMP, cpus="boot=2", end="shell"),
    LinuxCase("linux-pvh-foreign-initrd", "size=0", _ZONES2, _NUMA2, boot="pvh", end="shell"),
)
# make test's slice: two nodes with a vCPU each (bzImage), and a power-off through PVH. A test
# host that freezes under a case (a QEMU TCG fault, harness/memvisor/runner.py: frozen_cpus) is
# replaced and the case run once more, so a freeze no longer fails CI by itself.
QUICK: tuple[str, ...] = ("linux-numa2", "linux-pvh-poweroff")


def in_testhost(argv: list[str]) -> list[str]:
    """A Linux guest's command line, memvisor's or QEMU's, as it runs in the test host (above)."""
    out = list(argv)
    flag, extra = (("-cpu", TESTHOST_QEMU_CPU) if "qemu" in Path(out[0]).name
                   else ("--cpus", TESTHOST_CPUS))
    if flag in out:
        i = out.index(flag) + 1
        out[i] = f"{out[i]},{extra}"
    else:
        out += [flag, ("host," if flag == "-cpu" else "") + extra]
    return out


def config(c: LinuxCase) -> VmConfig:
    if c.end == "shell":
        return VmConfig(memory=c.memory, zones=list(c.zones), numa=list(c.numa), cpus=c.cpus,
                        kernel=KERNELS[c.boot], initramfs=FOREIGN_INITRAMFS,
                        cmdline=" ".join(w for w in (SHELL_CMDLINE, c.cmdline) if w))
    words = [CMDLINE, f"end={c.end}", c.cmdline]
    return VmConfig(memory=c.memory, zones=list(c.zones), numa=list(c.numa), cpus=c.cpus,
                    kernel=KERNELS[c.boot], initramfs=INITRAMFS,
                    cmdline=" ".join(w for w in words if w))


BANNER = "memvisor-linux 1"


def parse_linux(stdout: str) -> Report:
    return parse_report(stdout, "memvisor-linux")


# QEMU (-no-reboot) ends with status 0 whichever way the guest ended, and on SIGTERM: its
# status says nothing of the end, so the kernel's own last line on the console must.
QEMU_END_LINES = {"poweroff": "reboot: Power down", "reboot": "reboot: Restarting system",
                  "panic": "Kernel panic - not syncing"}
# In the test host a guest under QEMU was seen reset mid-boot, its console cut mid-line, no
# word from its kernel: once in a full compare run, once in 12 runs of linux-foreign-initrd alone
# (that test host also froze and panicked its own kernel meanwhile: nested SVM under TCG). A run
# that ends without any of these lines is run again there (inhost `end_lines`), the cut attempt
# kept with the result.
QEMU_ANY_END = "|".join(re.escape(line) for line in QEMU_END_LINES.values())


def check(exp: Expectation, end: str, result: dict, vmm: str = "memvisor") -> list[str]:
    """The guest's report against the oracle, and the status its end= asks for (under QEMU:
    status 0 and the kernel's line for that end)."""
    if vmm == "memvisor":
        want = SIGTERM_STATUS if end == "hold" else END_STATUS[end]
    else:
        want = 0
    bad: list[str] = []
    if result["rc"] != want:
        bad.append(f"{vmm}'s status was {result['rc']}, expected {want} (end={end})")
    line = QEMU_END_LINES.get(end)
    if vmm != "memvisor" and line and line not in result["stdout"]:
        bad.append(f"no {line!r} line on the console (end={end})")
    if end == "panic":
        if vmm == "memvisor" and "shutdown (triple fault)" not in result.get("stderr", ""):
            bad.append("no 'shutdown (triple fault)' line with the registers on stderr")
        return bad
    if end == "shell":
        return bad + check_shell(exp, result["stdout"])
    try:
        r = parse_linux(result["stdout"])
    except ReportError as e:
        return bad + [f"unreadable Linux report: {e}"]
    if not r.ok:
        bad.append(f"the Linux guest's own checks failed: {r.summary}; " + "; ".join(
            f"{c.name}: {c.detail}" for c in r.checks.values() if c.status == "FAIL"))
    return bad + check_report(exp, r)


def check_shell(exp: Expectation, console: str) -> list[str]:
    """What the foreign initramfs's shell printed (SHELL_INPUT): the nodes online, and each
    node's CPUs and distances, against the oracle."""
    want = {nid: (sorted(c for c in n.cpus if c < exp.boot_cpus), list(exp.slit[nid]))
            for nid, n in exp.numa.items()}
    online = _FOREIGN_ONLINE.findall(console)
    want_online = f"{min(want)}-{max(want)}" if len(want) > 1 else str(min(want))
    if online != [want_online]:
        return [f"the shell printed nodes online {online or 'nothing'}, expected "
                f"[{want_online!r}] (was the input typed and run?)"]
    got = {int(m[0]): (_cpulist(m[1]), [int(d) for d in m[2].split()])
           for m in _FOREIGN_NODE.findall(console)}
    return [f"node {nid}: CPUs {got.get(nid, ('?',))[0]} distances "
            f"{got.get(nid, ('?', '?'))[1]}, expected CPUs {cpus} distances {dist}"
            for nid, (cpus, dist) in sorted(want.items()) if got.get(nid) != (cpus, dist)] + \
        [f"node {nid} printed, not configured" for nid in sorted(set(got) - set(want))]


def _cpulist(text: str) -> list[int]:
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


def check_report(exp: Expectation, r: Report) -> list[str]:
    bad: list[str] = []
    cpu = r.one("cpu")
    if cpu is None or cpu.num("online") != exp.boot_cpus:
        bad.append(f"Linux has {cpu.num('online') if cpu else '?'} CPUs online, expected "
                   f"{exp.boot_cpus}")
    nodes = {ln.num("id"): ln for ln in r.all("node")}
    # Without --numa there is no SRAT: Linux has the one node 0 with everything.
    want_nodes = {nid: (n.boot_ram, sorted(c for c in n.cpus if c < exp.boot_cpus),
                        sorted(h.size for h in n.hotplug)) for nid, n in exp.numa.items()} or \
        {0: (exp.boot_ram, list(range(exp.boot_cpus)), [])}
    if sorted(nodes) != sorted(want_nodes):
        bad.append(f"Linux nodes {sorted(nodes)}, expected {sorted(want_nodes)}")
    hot: dict[int, list[int]] = {}
    for ln in r.all("hotplug_range"):
        hot.setdefault(ln.num("node"), []).append(ln.num("end") - ln.num("start"))
    for nid, (ram, cpus, hotplug) in sorted(want_nodes.items()):
        ln = nodes.get(nid)
        if ln is None:
            continue
        got = ln.nums("cpus") if ln.has("cpus") else []    # omitted for a CPU-less node
        if got != cpus:
            bad.append(f"node {nid}: CPUs {got}, expected {cpus}")
        total = ln.num("mem_total")
        floor = ram - max(int(MAX_KERNEL_SHARE * ram), MAX_KERNEL_BYTES)
        if not floor <= total <= ram:
            bad.append(f"node {nid}: MemTotal {total:#x}, expected at most its RAM {ram:#x} "
                       f"and at least {floor:#x}")
        if sorted(hot.get(nid, [])) != hotplug:
            bad.append(f"node {nid}: hotpluggable ranges {[hex(s) for s in hot.get(nid, [])]}, "
                       f"expected {[hex(s) for s in hotplug]}")
    want_dist = [list(row) for row in exp.slit] or [[10]]
    dist = [ln.nums("dist") for ln in sorted(r.all("distance"), key=lambda d: d.num("from"))]
    if dist != want_dist:
        bad.append(f"Linux distances {dist}, expected {want_dist}")
    blocks = r.one("memory_blocks")
    if blocks is None:
        bad.append("no memory_blocks line")
    else:
        size, online = blocks.num("block_size"), blocks.num("online")
        # Boot RAM is online at boot; a block the 640 KiB-1 MiB hole or a zone edge cuts counts.
        if blocks.num("offline") or abs(online * size - exp.boot_ram) >= size * max(1, len(exp.zones)):
            bad.append(f"memory blocks: {online} online and {blocks.num('offline')} offline of "
                       f"{size:#x} bytes, expected boot RAM {exp.boot_ram:#x} online")
    return bad

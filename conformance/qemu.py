"""A matrix case under QEMU: its runner case, its checks against the same oracle, its status.

The guest's checks are memvisor's (conformance/checks.py) less the failures that only say QEMU's
machine is not memvisor's ("platform" entries of harness/memvisor/differences.py, kept as
notes), with QEMU's own account in their place: the E820 with the firmware's reservations, the
virtio devices over QMP. The host's checks are memvisor's on the mappings of QEMU's backends,
found in smaps by size and kind (QEMU logs no addresses). Debian's Linux is checked as under
memvisor (conformance/linux.py, resize.check_linux) but for how it ended: QEMU -no-reboot
ends with 0 whatever the guest did, so the kernel's last console line tells.
"""
from __future__ import annotations

from pathlib import Path

from memvisor.differences import matching
from memvisor.driver import QemuDriver
from memvisor.hoststate import Mapping
from memvisor.oracle import Expectation
from memvisor.qemuargs import QemuCommand
from memvisor.report import ProbeReport

from . import cases as matrix
from . import linux, resize, run
from .checks import Located, check_boot, check_guest, check_host, setup_failures

CASE_TIMEOUT_S = 90
LEGACY = ((0, 0xA0000), (0x100000, None))   # RAM the guest has below 1 MiB and above it
LOW_RAM_LIMIT = 0xB0000000                  # q35 keeps RAM below 4 GiB up to this


def qmp_socket(case: matrix.Case) -> str:
    return f"/tmp/memvisor-qmp-{case.name}.sock"


def inhost_case(case: matrix.Case, driver: QemuDriver, plan: QemuCommand,
                testhost: bool = False) -> dict:
    """The runner's case: the guest's own keys as under memvisor (run.guest_keys), QEMU's
    command line, QMP for the start-up commands, the queries and any resize steps."""
    sock = qmp_socket(case)
    queries = ["query-memory-devices", "query-memory-size-summary"] + \
        (["query-balloon"] if case.config.balloon else [])
    argv = driver.head(case.config, sock) + plan.args
    keys = run.guest_keys(case, testhost)
    if case.guest != "linux":
        keys.update(hold_marker="SUMMARY:",   # a configuration QEMU accepts is stopped alike
                    timeout=CASE_TIMEOUT_S)
    elif testhost:
        argv = linux.in_testhost(argv)
        if case.end in linux.END_STATUS:     # not a held guest, which the harness stops
            keys["end_lines"] = linux.QEMU_ANY_END
    return {
        "name": f"{case.name} (qemu)",
        "argv": argv,
        **keys,
        "setup": list(case.setup) + [f"rm -f {sock}"],
        "teardown": list(case.teardown) + [f"rm -f {sock}"],
        "files": list(case.files),
        "qmp": {"socket": sock, "start": [list(c) for c in plan.qmp_start], "queries": queries},
        "qmp_control": ({"socket": sock, "virtio_mem": plan.virtio_mem,
                         "boot_sizes": plan.boot_sizes, "dimm_backend": plan.dimm_backend,
                         "balloon": case.config.balloon is not None} if case.steps else None),
    }


def refused(result: dict) -> bool:
    """The VMM ended before any guest ran, with status 1 (both VMMs' bad-configuration exit)."""
    return (not result.get("timed_out") and "during" not in result and result.get("rc") == 1
            and not result.get("stdout", "").strip())


def _e820(exp: Expectation, r: ProbeReport) -> list[str]:
    """Usable RAM plus what the firmware reserved inside RAM is the boot RAM."""
    if exp.boot_ram >= LOW_RAM_LIMIT:
        return []
    ram = [(0, 0xA0000), (0x100000, exp.boot_ram)]
    usable = sum(e.size for e in r.e820 if e.type == 1)
    reserved = sum(max(0, min(e.addr + e.size, hi) - max(e.addr, lo))
                   for e in r.e820 if e.type != 1 for lo, hi in ram)
    want = exp.boot_ram - (0x100000 - 0xA0000)
    if usable + reserved != want:
        return [f"E820 (QEMU): usable {usable:#x} + reserved in RAM {reserved:#x}, expected boot "
                f"RAM {want:#x} less the legacy hole"]
    return []


def _virtio(exp: Expectation, result: dict, plan: QemuCommand) -> list[str]:
    qmp = result.get("qmp") or {}
    if "error" in qmp:
        return [f"QMP: {qmp['error']}"]
    bad: list[str] = []
    devs = {d["data"].get("id"): d["data"] for d in qmp.get("query-memory-devices") or []
            if d.get("type") == "virtio-mem"}
    for h in exp.hotplug:
        if h.kind != "virtio-mem":
            continue
        d = devs.get(plan.virtio_mem.get(str(h.zone)))
        if d is None:
            bad.append(f"virtio-mem of zone {h.zone}: not in query-memory-devices")
            continue
        if d.get("max-size") != h.size or d.get("requested-size") != h.plugged:
            bad.append(f"virtio-mem of zone {h.zone}: max-size {d.get('max-size')}, requested "
                       f"{d.get('requested-size')}, expected {h.size}, {h.plugged}")
        if h.guest_numa_id is not None and d.get("node") != h.guest_numa_id:
            bad.append(f"virtio-mem of zone {h.zone}: node {d.get('node')}, expected "
                       f"{h.guest_numa_id}")
    if exp.balloon_size is not None and not isinstance(qmp.get("query-balloon"), dict):
        bad.append(f"virtio-balloon: query-balloon answered {qmp.get('query-balloon')}")
    elif exp.balloon_size is not None and "actual" not in qmp["query-balloon"]:
        bad.append(f"virtio-balloon: query-balloon answered {qmp['query-balloon']}")
    return bad


def _kind_matches(z, m: Mapping) -> bool:
    if not m.perms.startswith("rw"):
        return False
    if z.file is not None:
        return (m.name.startswith(z.file.rstrip("/") + "/") if z.file_is_dir
                else z.file in m.name)
    if z.shared or z.hugepages:
        return "memfd:" in m.name
    return m.name == ""


def qemu_zones(plan: QemuCommand):
    """QEMU's backends in smaps, by size and kind. Backends of the same size and kind are told
    apart by the order QEMU creates them (-object order: the zones', each zone's virtio-mem
    region after its boot RAM): Linux places each new mapping below the ones before it
    (mm/mmap.c, arch_get_unmapped_area_topdown), so the first created is the highest."""
    def locate(exp: Expectation, result: dict, maps: list[Mapping]) -> dict[str, Located | str]:
        maps = sorted(maps, key=lambda m: -m.start)
        used: set[int] = set()
        out: dict[str, Located | str] = {}
        for z in exp.zones:
            found: list[Mapping] = []
            for size in (z.boot_size, z.hotplug_size):
                if not size:
                    continue
                m = next((m for m in maps if m.size == size and m.start not in used
                          and _kind_matches(z, m)), None)
                if m is None:
                    break
                used.add(m.start)
                found.append(m)
            else:
                out[z.zone] = Located(None, sum(m.size for m in found), found)
                continue
            out[z.zone] = f"no mapping of {size:#x} bytes of its kind in QEMU's smaps"
        return out
    return locate


def check(case: matrix.Case, result: dict, plan: QemuCommand) -> tuple[list[str], list[str]]:
    """(failures, notes): a note is a failure set aside by a platform difference."""
    if result.get("lost"):
        return [f"lost: {result['lost']}"], []
    if not case.valid:
        if refused(result):
            return setup_failures(result), []
        return [f"QEMU did not refuse a configuration the oracle rejects (rule "
                f"{case.expect.rule}): status {result.get('rc')}"], []
    exp = case.expect
    assert isinstance(exp, Expectation)

    def guest(e: Expectation, r: ProbeReport) -> list[str]:
        return check_guest(e, r) + _e820(e, r) + _virtio(e, result, plan)

    def host(e: Expectation, res: dict) -> list[str]:
        return check_host(e, res, qemu_zones(plan))

    if case.guest == "linux":
        raw = _linux(case, result, plan, host)
    else:
        raw = check_boot(exp, result, None, QemuDriver.stop_status, guest, host)
    notes = [f for f in raw if matching("platform", f, case.config, exp)]
    return [f for f in raw if f not in notes], notes


def _linux(case: matrix.Case, result: dict, plan: QemuCommand, host) -> list[str]:
    """Debian's Linux under QEMU: the checks of run.check_linux and resize.check_linux, with
    QEMU's end statuses (linux.check) and its backends found in smaps."""
    exp = case.expect
    assert isinstance(exp, Expectation)
    if case.steps:
        return resize.check_linux(exp, list(case.steps), result, case.config.balloon) + \
            setup_failures(result)
    if result["timed_out"]:
        return check_boot(exp, result, None, QemuDriver.stop_status)
    bad = linux.check(exp, case.end, result, "qemu")
    if case.end == "hold":
        if "during" in result:
            bad += host(exp, result) + _virtio(exp, result, plan)
        else:
            bad.append("the guest never held after its report: no host state was sampled")
    return bad + setup_failures(result)


def status(case: matrix.Case, result: dict, failures: list[str]) -> str:
    """pass, fail or refused, the same for both VMMs. A rejection refused with the wrong
    message (memvisor) is a failure."""
    if refused(result):
        return "refused" if case.valid or not failures else "fail"
    return "pass" if case.valid and not failures else "fail"


def qemu_binary() -> str | None:
    import shutil
    return shutil.which(QemuDriver().binary) or (QemuDriver().binary
                                                 if Path(QemuDriver().binary).exists() else None)

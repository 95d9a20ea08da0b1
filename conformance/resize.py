"""Resize sequences: a running VM grown and shrunk through the REST API, step by step.

Each case boots the resize guest (guests/resize.c) with `--api-socket`, waits for its first
report, then plays its steps (harness/memvisor/sequence.py runs them where the VM runs). After
each step the guest shows what it plugged (its `resize` and `dimm` lines, every plugged page
checked against the pattern written into it) and the host shows what the zone's mapping holds.
What each step must give comes from harness/memvisor/resizemodel.py, never from the VMM.
"""
from __future__ import annotations

import re
import json
from dataclasses import dataclass

from memvisor.driver import BUILD, VmConfig
from memvisor.hoststate import parse_smaps
from memvisor.oracle import Expectation
from memvisor.report import Report, ReportError
from memvisor.resizemodel import OK, ResizeModel

from . import linux
from .checks import zone_lines

GUEST = BUILD / "guests" / "resize.elf"
MiB, GiB = 1 << 20, 1 << 30
STEP_TIMEOUT_S = 60
STEP_BUDGET_S = 20       # what a step adds to its case's time budget (most take < 1 s)
# The zone mapping's resident memory follows the plugged memory to within this: the guest's
# own pages, page tables and a partly touched huge page at the edges.
RESIDENT_SLACK = 8 * MiB
SUMMARY = "^SUMMARY:"
QUICK = ("resize-vmem-default", "resize-acpi-grow")
# Free page reporting (Linux 6.1 mm/page_reporting.c): a freed block of order >= pageblock_order
# (2 MiB on x86; page_reporting_register: `prdev->order ? : pageblock_order`, virtio_balloon sets
# no order) requests a pass, which starts PAGE_REPORTING_DELAY (2 * HZ) later and reports up to
# budget + 1 batches of PAGE_REPORTING_CAPACITY (32) blocks per free list, budget being a
# sixteenth of the list (at least 1); what is left waits for the next pass, 2 s on. A 256 MiB
# hog frees 64-128 such blocks: the first pass or two report them (QEMU TCG: 252 of 256 MiB
# back on the host 2 s after the hog ended). FPR_SETTLE_S after the guest's report that the hog
# ended, the host must hold at least FPR_FRACTION of the hog less than at its peak.
FPR_SETTLE_S = 10
FPR_FRACTION = 0.5
HOG_TOUCHED = "^hog touched="
# A hog in the test host: nested KVM under TCG, each first touch two page faults (the guest's,
# then memvisor's), each OOM deflation 1 MiB (VIRTIO_BALLOON_OOM_NR_PAGES, 256 pages).
HOG_TIMEOUT_S = 120


@dataclass(frozen=True)
class Step:
    name: str
    endpoint: str            # "vm.resize", "vm.resize-zone", "console" (typed) or "settle"
    body: dict | str         # a str is sent as is (malformed JSON), or typed; settle: seconds


@dataclass(frozen=True)
class Sequence:
    name: str
    memory: str | None
    zones: tuple[str, ...] = ()
    numa: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    cmdline: str = ""
    balloon: str | None = None
    linux: bool = False      # Debian's Linux (guests/linux, end=watch) instead of the resize guest


def grow(n: int) -> Step:
    return Step(f"resize-{n // MiB}M", "vm.resize", {"desired_ram": n})


def balloon(n: int) -> Step:
    return Step(f"balloon-{n // MiB}M" if n % MiB == 0 else f"balloon-{n}", "vm.resize",
                {"desired_balloon": n})


def zone(zid: str, n: int) -> Step:
    return Step(f"zone-{zid}-{n // MiB}M", "vm.resize-zone", {"id": zid, "desired_ram": n})


def hog(n: int) -> Step:
    """The Linux guest needs n bytes: its /init runs `report hog` (writes, reads back, frees)."""
    return Step(f"hog-{n // MiB}M", "console", {"hog": n})


def settle(seconds: int) -> Step:
    return Step(f"settle-{seconds}s", "settle", {"seconds": seconds})


_NUMA2 = ("guest_numa_id=0,cpus=0,distances=[1@20],memory_zones=mem0",
          "guest_numa_id=1,distances=[0@20],memory_zones=mem1")

SEQUENCES = (
    Sequence("resize-vmem-default", "size=256M,hotplug_method=virtio-mem,hotplug_size=512M",
             steps=(grow(512 * MiB), grow(768 * MiB), grow(384 * MiB), grow(256 * MiB),
                    grow(1280 * MiB), grow(257 * MiB), grow(128 * MiB),
                    zone("mem0", 640 * MiB), zone("nosuch", 640 * MiB),
                    Step("malformed", "vm.resize", "{\"desired_ram\": "),
                    Step("wrong-type", "vm.resize", {"desired_ram": "1G"}),
                    grow(256 * MiB))),
    Sequence("resize-vmem-zones-numa", "size=0,hotplug_method=virtio-mem",
             zones=("id=mem0,size=256M,hotplug_size=256M",
                    "id=mem1,size=256M,hotplug_size=512M,shared=on"),
             numa=_NUMA2,
             steps=(zone("mem0", 512 * MiB), zone("mem1", 768 * MiB), zone("mem1", 258 * MiB),
                    zone("mem1", 256 * MiB), grow(GiB), zone("mem0", 256 * MiB))),
    Sequence("resize-vmem-integrity", "size=256M,hotplug_method=virtio-mem,hotplug_size=256M,"
             "hotplugged_size=128M", cmdline="cycles=100",
             steps=(grow(512 * MiB), grow(256 * MiB), grow(320 * MiB))),
    Sequence("resize-vmem-file", "size=0,hotplug_method=virtio-mem",
             zones=("id=mem0,size=128M,file=/tmp/memvisor-resize.img,shared=on,hotplug_size=256M",),
             steps=(zone("mem0", 384 * MiB), zone("mem0", 192 * MiB), zone("mem0", 128 * MiB))),
    Sequence("resize-vmem-hugetlb", "size=0,hotplug_method=virtio-mem",
             zones=("id=mem0,size=64M,hugepages=on,hugepage_size=2M,hotplug_size=128M",),
             steps=(zone("mem0", 192 * MiB), zone("mem0", 65 * MiB), zone("mem0", 64 * MiB))),
    Sequence("resize-balloon", "size=512M", balloon="size=64M", cmdline="fill=1",
             steps=(balloon(192 * MiB), balloon(320 * MiB), balloon(128 * MiB), balloon(0),
                    balloon(4097), balloon(1 << 30), grow(768 * MiB), balloon(256 * MiB))),
    Sequence("resize-balloon-options", "size=256M,hotplug_method=virtio-mem,hotplug_size=256M",
             balloon="size=0,deflate_on_oom=on,free_page_reporting=on",
             cmdline="fill=1 report_free=32M",
             steps=(grow(512 * MiB), balloon(192 * MiB), balloon(0))),
    # Debian's Linux: what users run. CH's test_virtio_mem, test_memory_hotplug and the balloon
    # test in small: MemTotal follows each step.
    Sequence("linux-resize-vmem", "size=512M,hotplug_method=virtio-mem,hotplug_size=1G",
             linux=True, steps=(grow(1536 * MiB), grow(1024 * MiB), grow(512 * MiB))),
    Sequence("linux-resize-acpi", "size=512M,hotplug_size=1G", linux=True,
             steps=(grow(1024 * MiB), grow(1536 * MiB), grow(1024 * MiB))),
    Sequence("linux-resize-balloon", "size=1G", balloon="size=0", linux=True,
             steps=(balloon(256 * MiB), balloon(0))),
    # CH's test_virtio_balloon_deflate_on_oom and _free_page_reporting in small, the guest's
    # need made by the guest itself (a hog typed on its console) instead of CH's sysrq OOM and
    # `stress`: a balloon holding 384 of 512 MiB leaves Linux about 40 MiB free, so a 256 MiB
    # hog can only be served by the balloon deflating (and the hog, not OOM-killed, ends).
    Sequence("linux-balloon-deflate-on-oom", "size=512M", balloon="size=0,deflate_on_oom=on",
             linux=True, steps=(balloon(384 * MiB), hog(256 * MiB), balloon(0))),
    Sequence("linux-balloon-free-page-reporting", "size=512M",
             balloon="size=0,free_page_reporting=on", linux=True,
             steps=(hog(256 * MiB), settle(FPR_SETTLE_S))),
    Sequence("resize-acpi-grow", "size=256M,hotplug_size=1G",
             steps=(grow(384 * MiB), grow(640 * MiB), grow(600 * MiB), grow(512 * MiB),
                    grow(1280 * MiB), grow(1408 * MiB), grow(1280 * MiB))),
)


def socket_path(name: str) -> str:
    return f"/tmp/memvisor-api-{name}.sock"


# Hot-added memory onlined as movable, so that it can be unplugged again (virtio-mem, as CH's
# guests do with auto_online_blocks).
LINUX_CMDLINE = "memtest=off memhp_default_state=online_movable end=watch"
LINUX_QUIET_S = 3        # Linux reports again as each block comes online: read it when quiet
LINUX_SLACK = 8 * MiB    # MemTotal beside the model's RAM: pages Linux takes for itself


def config(s: Sequence) -> VmConfig:
    if s.linux:
        return VmConfig(memory=s.memory, zones=list(s.zones), numa=list(s.numa),
                        kernel=linux.KERNELS["bzimage"], initramfs=linux.INITRAMFS,
                        cmdline=f"{linux.CMDLINE} {LINUX_CMDLINE}", balloon=s.balloon,
                        api_socket=socket_path(s.name))
    return VmConfig(memory=s.memory, zones=list(s.zones), numa=list(s.numa), kernel=GUEST,
                    cmdline=s.cmdline, balloon=s.balloon, api_socket=socket_path(s.name))


def virtio_mem_method(s: Sequence) -> bool:
    return "hotplug_method=virtio-mem" in (s.memory or "")


def _hog_steps(st: Step, now: dict) -> list[dict]:
    """A hog typed on the console: one step until all of it is written (the host's sample then
    is the hog's peak), one until the guest's report after it ended."""
    n = st.body["hog"]
    return [{"name": st.name, "kind": "hog", "hog": n, "type": f"hog {n // MiB}M\n",
             "wait": HOG_TOUCHED, "timeout": HOG_TIMEOUT_S, "sample": ["smaps"], "expect": now},
            {"name": f"{st.name}-done", "kind": "hog-done", "hog": n, "wait": SUMMARY,
             "wait_from": "previous", "timeout": HOG_TIMEOUT_S, "quiet": LINUX_QUIET_S,
             "expect": now}]


def _balloon_options(opts: str | None) -> dict[str, str]:
    return dict(o.partition("=")[::2] for o in (opts or "").split(",") if o)


def plan_steps(s: Sequence, exp: Expectation) -> list[dict]:
    """The steps as sequence.py runs them, each with the answer and state the model gives."""
    model = ResizeModel(exp, virtio_mem_method(s), deflate_on_oom=_balloon_options(
        s.balloon).get("deflate_on_oom") in ("on", "true"))
    out: list[dict] = []
    for st in s.steps:
        before = model.snapshot()
        if st.endpoint == "console":
            out += _hog_steps(st, before)
            continue
        if st.endpoint == "settle":
            out.append({"name": st.name, "kind": "settle", "wait": None,
                        "settle": st.body["seconds"], "expect": before})
            continue
        if isinstance(st.body, str) or not all(isinstance(v, (int, str)) for v in st.body.values()) \
                or not isinstance(st.body.get("desired_ram", st.body.get("desired_balloon")), int):
            status = 400                   # malformed JSON, wrong type: nothing changes
        elif "desired_balloon" in st.body:
            status = model.resize_balloon(st.body["desired_balloon"])
        elif st.endpoint == "vm.resize":
            status = model.resize(st.body["desired_ram"])
        else:
            status = model.resize_zone(st.body["id"], st.body["desired_ram"])
        after = model.snapshot()
        step = {"name": st.name, "call": ["PUT", st.endpoint, st.body],
                "wait": SUMMARY if after != before else None,
                "timeout": STEP_TIMEOUT_S, "expect_status": status, "expect": after}
        if s.linux:
            step["quiet"] = LINUX_QUIET_S
        out.append(step)
    return out


_MEM = re.compile(r"^virtio_mem dev=(\d+) .*?addr=0x([0-9a-f]+) region=0x([0-9a-f]+)")
_RESIZE = re.compile(r"^resize seq=\d+ kind=virtio-mem dev=(\d+) requested=0x([0-9a-f]+) "
                     r"plugged=0x([0-9a-f]+) answer=(-?\d+) verified_bad_pages=(\d+)")
_DIMM = re.compile(r"^dimm seq=\d+ slot=(\d+) base=0x([0-9a-f]+) size=0x([0-9a-f]+) pxm=(\d+) "
                   r"bad_pages=(\d+)")
_BALLOON = re.compile(r"^balloon seq=\d+ target=0x([0-9a-f]+) actual=0x([0-9a-f]+) ")
_BALLOON_DEV = re.compile(r"^balloon_dev .*features=0x([0-9a-f]+)")
_FREE_REPORT = re.compile(r"^free_report bytes=0x([0-9a-f]+) ")
_FILL = re.compile(r"^fill pages=(\d+)")
# After fill=1, what the guest never wrote: below 1 MiB, its image, page tables, ACPI tables.
FILL_GAP = 24 * MiB
_INTEGRITY = re.compile(r"^integrity dev=\d+ cycles=(\d+) .* bad_pages=(\d+)")


def _resident(smaps: str, host: int, size: int) -> int | None:
    """What the zone's mapping [host, host+size) holds, over every VMA the kernel split it in
    (a hugetlb zone's virtio-mem region may become a VMA of its own); None when unmapped."""
    maps = [m for m in parse_smaps(smaps) if m.start < host + size and host < m.end]
    if not maps:
        return None
    return sum(m.resident_kb * 1024 for m in maps)


def _total_resident(smaps: str) -> int:
    return sum(m.resident_kb * 1024 for m in parse_smaps(smaps))


def _check_fill(exp: Expectation, out: list[str], zones: dict, smaps: str, b0: int) -> list[str]:
    """fill=1 makes the first zone's boot RAM resident; what the balloon took at boot and what
    free page reporting (report_free=) handed back must be missing from it on the host."""
    if not any(_FILL.match(ln) for ln in out) or exp.zones[0].zone not in zones:
        return []
    z = exp.zones[0]
    reported = sum(int(m[1], 16) for m in map(_FREE_REPORT.match, out) if m)
    res = _resident(smaps, zones[z.zone][1], zones[z.zone][2])
    want = z.boot_size + z.hotplugged_size - reported - b0
    if res is None or not want - FILL_GAP <= res <= want + RESIDENT_SLACK:
        return [f"zone {z.zone} holds {(res or 0) // MiB} MiB on the host after fill=1, expected "
                f"about {want // MiB} MiB (boot RAM less {reported // MiB} MiB reported free and "
                f"{b0 // MiB} MiB of balloon)"]
    return []


def _first_checks(result: dict) -> list[str]:
    """Why no step can be judged, or []."""
    if result.get("timed_out"):
        return ["the sequence did not finish in time: " + (result.get("stuck") or "")]
    steps = result.get("steps")
    if not steps:
        return [f"no step ran (status {result.get('rc')}): the guest never reported"]
    if steps[0].get("error"):
        return [steps[0]["error"]]
    return []


def _check_answer(p: dict, r: dict, where: str) -> list[str]:
    """What every step must show whatever the guest: the API's answer, the guest's report of
    the change (when there is one), and memory_actual_size in vm.info."""
    if r.get("error"):
        return [f"{where}: {r['error']}"]
    bad = []
    if r.get("status") != p["expect_status"]:
        bad.append(f"{where}: HTTP {r.get('status')} ({(r.get('body') or '').strip()!r}), "
                   f"expected {p['expect_status']}")
    if r.get("status", 0) >= 400 and ("\n" in (r.get("body") or "").strip()
                                      or not (r.get("body") or "").strip()):
        bad.append(f"{where}: a refusal must give a one-line reason, got {r.get('body')!r}")
    if p["wait"] and not r.get("matched"):
        return bad + [f"{where}: the guest did not report the change within {p['timeout']} s"]
    if r.get("info_status") != 200:
        bad.append(f"{where}: vm.info: HTTP {r.get('info_status')} {r.get('info')!r}")
    elif json.loads(r["info"]).get("memory_actual_size") != p["expect"]["actual"]:
        bad.append(f"{where}: vm.info memory_actual_size "
                   f"{json.loads(r['info']).get('memory_actual_size')}, expected "
                   f"{p['expect']['actual']}")
    return bad


def _linux_reports(text: str) -> list[Report | str]:
    """Each Linux report in text, or why it could not be read."""
    out: list[Report | str] = []
    for part in text.split(linux.BANNER)[1:]:
        try:
            out.append(linux.parse_linux(linux.BANNER + part))
        except ReportError as e:
            out.append(str(e))
    return out


def _num(r: Report | str | None, key: str, field: str) -> int | None:
    ln = r.one(key) if isinstance(r, Report) else None
    return ln.num(field) if ln is not None and ln.has(field) else None


_HOG_END = re.compile(r"^hog status=(\d+)")
_HOG_DONE = re.compile(r"^hog size=0x([0-9a-f]+) bad_pages=(\d+)")


def _hog_end(lines: list[str]) -> str:
    """How the hog ended, as far as the console tells."""
    ends = [int(m[1]) for m in map(_HOG_END.match, lines) if m]
    errors = [ln.strip() for ln in lines if ln.startswith("hog error=")]
    if not ends:
        return "no `hog status=` line" + (f" ({errors[0]})" if errors else "")
    # 137: SIGKILL, which is how the OOM killer ends a process.
    return f"status {ends[0]}" + (" (killed: the OOM killer)" if ends[0] == 137 else "") + \
        (f" ({errors[0]})" if errors else "")


def _check_hog(p: dict, r: dict, before: Report, after: Report | str | None, ram: int,
               deflate_on_oom: bool, where: str) -> list[str]:
    """The guest's report after a hog: the hog ended well and was not OOM-killed, its memory
    read back intact, MemTotal kept; with deflate_on_oom the balloon gave back at least what the
    hog needed beyond what was free, and the VMM's memory_actual_size follows the driver."""
    lines = r["lines"]
    bad = []
    done = [m for m in map(_HOG_DONE.match, lines) if m]
    if _hog_end(lines) != "status 0":
        bad.append(f"{where}: the {p['hog'] // MiB} MiB hog ended with {_hog_end(lines)}")
    elif len(done) != 1 or int(done[0][1], 16) != p["hog"] or int(done[0][2]):
        bad.append(f"{where}: the hog's memory did not read back intact: "
                   f"{done[0][0] if done else 'no `hog size=` line'}")
    if not isinstance(after, Report):
        return bad + [f"{where}: no readable Linux report after the hog: {after}"]
    if _num(after, "meminfo", "total") != _num(before, "meminfo", "total"):
        bad.append(f"{where}: MemTotal {_num(after, 'meminfo', 'total')} after the hog, "
                   f"{_num(before, 'meminfo', 'total')} before")
    if not deflate_on_oom:
        return bad
    held0, held1 = _num(before, "balloon", "held"), _num(after, "balloon", "held")
    free0 = _num(before, "meminfo", "free")
    if held0 is None or held1 is None or free0 is None:
        return bad + [f"{where}: no balloon or meminfo line in the reports around the hog"]
    need = p["hog"] - free0
    if held0 - held1 < need:
        bad.append(f"{where}: the balloon gave back {(held0 - held1) // MiB} MiB for the hog "
                   f"(held {held0 // MiB} MiB, then {held1 // MiB} MiB), expected at least "
                   f"{need // MiB} MiB: the hog less the {free0 // MiB} MiB that were free")
    actual = json.loads(r["info"]).get("memory_actual_size") if r.get("info_status") == 200 \
        else None
    if actual != ram - held1:
        bad.append(f"{where}: vm.info memory_actual_size {actual}, expected {ram - held1} "
                   f"(the RAM less the {held1 // MiB} MiB the guest's balloon holds)")
    return bad


def _check_reported(p: dict, r: dict, hog: int, peak: int | None, base: int,
                    where: str) -> list[str]:
    """Free page reporting: the hog was resident on the host at its peak, and FPR_SETTLE_S
    after the guest's report that it ended, FPR_FRACTION of it is gone from the host again."""
    if peak is None:
        return [f"{where}: no host sample at the hog's peak"]
    after = _total_resident(r["smaps"])
    floor = int(hog * FPR_FRACTION)
    if peak - base < floor:
        return [f"{where}: memvisor held {(peak - base) // MiB:+d} MiB at the hog's peak, "
                f"expected at least {floor // MiB:+d} MiB (the hog's memory resident)"]
    if peak - after < floor:
        return [f"{where}: memvisor holds {(peak - after) // MiB} MiB less than at the hog's "
                f"peak {p['settle']} s after the guest's report, expected at least "
                f"{floor // MiB} MiB (free page reporting gives freed memory back)"]
    return []


def check_linux(exp: Expectation, planned: list[dict], result: dict,
                balloon_opts: str | None = None) -> list[str]:
    """A Linux resize case: after each change, MemTotal moved by what the model says (the RAM
    less the balloon, or the RAM alone with deflate_on_oom), to within what Linux keeps for the
    new memory's struct pages; the balloon holds its target; hogs and free page reporting as
    _check_hog and _check_reported say."""
    first = _first_checks(result)
    if first:
        return first
    steps = result["steps"]
    reports = _linux_reports(result["stdout"])
    if not reports or _num(reports[0], "meminfo", "total") is None:
        return [f"no readable first Linux report: {reports[:1]}"]
    bad = [f"Linux report: {x if isinstance(x, str) else x.summary}"
           for x in reports if isinstance(x, str) or not x.ok]
    opts = _balloon_options(balloon_opts)
    doo = opts.get("deflate_on_oom") in ("on", "true")
    fpr = opts.get("free_page_reporting") in ("on", "true")
    last = reports[0]
    assert isinstance(last, Report)
    total0 = _num(last, "meminfo", "total") or 0
    memtotal0 = ResizeModel(exp, False, deflate_on_oom=doo).snapshot()["memtotal"]
    base = _total_resident(steps[0].get("smaps_before", ""))
    peak: int | None = None
    for p, r in zip(planned, steps):
        where = f"step {p['name']}"
        kind = p.get("kind", "api")
        if kind != "api" and r.get("error"):
            bad.append(f"{where}: {r['error']}")
            break
        if kind in ("hog", "hog-done") and not r.get("matched"):
            what = f"the guest did not write its {p['hog'] // MiB} MiB hog" if kind == "hog" \
                else "no Linux report after the hog"
            bad.append(f"{where}: {what} within {p['timeout']} s; the hog ended with "
                       f"{_hog_end(r['lines'])}")
            break
        if kind == "hog":
            peak = _total_resident(r.get("sample_at_match", {}).get("smaps", ""))
            continue
        if kind == "hog-done":
            after = (_linux_reports("".join(r["lines"])) or [None])[-1]
            bad += _check_hog(p, r, last, after, p["expect"]["ram"], doo, where)
            last = after if isinstance(after, Report) else last
            continue
        if kind == "settle":
            if fpr:
                bad += _check_reported(p, r, max(q.get("hog", 0) for q in planned), peak, base,
                                       where)
            continue
        bad += _check_answer(p, r, where)
        if r.get("error") or (p["wait"] and not r.get("matched")):
            break
        seen = _linux_reports("".join(r["lines"]))
        if not p["wait"]:
            if seen:
                bad.append(f"{where}: Linux's memory changed on a request that must change nothing")
            continue
        if not seen:
            bad.append(f"{where}: no Linux report after the change")
            continue
        want = p["expect"]["memtotal"] - memtotal0
        got = (_num(seen[-1], "meminfo", "total") or -1) - total0
        if abs(got - want) > abs(want) // 32 + LINUX_SLACK:
            bad.append(f"{where}: Linux's MemTotal moved by {got // MiB:+d} MiB, expected "
                       f"{want // MiB:+d} MiB")
        held = _num(seen[-1], "balloon", "held")
        body = p["call"][2] if len(p.get("call") or ()) > 2 else None
        if isinstance(body, dict) and "desired_balloon" in body and held is not None \
                and held != p["expect"]["balloon"]:
            bad.append(f"{where}: the guest's balloon holds {held // MiB} MiB, expected "
                       f"{p['expect']['balloon'] // MiB} MiB")
        last = seen[-1] if isinstance(seen[-1], Report) else last
    if len(steps) < len(planned) and not bad:
        bad.append(f"only {len(steps)} of {len(planned)} steps ran")
    return bad


def _balloon_features(opts: str | None) -> int:
    """The feature bits the balloon must offer: VERSION_1, and each option's (CH's balloon.rs)."""
    kv = _balloon_options(opts)
    bits = 1 << 32
    if kv.get("deflate_on_oom") in ("on", "true"):
        bits |= 1 << 2                  # VIRTIO_BALLOON_F_DEFLATE_ON_OOM
    if kv.get("free_page_reporting") in ("on", "true"):
        bits |= 1 << 5                  # VIRTIO_BALLOON_F_REPORTING
    return bits


def check(exp: Expectation, planned: list[dict], result: dict,
          balloon_opts: str | None = None) -> list[str]:
    """The failures of a resize case of the resize guest, from its raw result."""
    first = _first_checks(result)
    if first:
        return first
    steps = result["steps"]
    bad: list[str] = []
    out = result["stdout"].splitlines()
    bad += [f"guest: {ln}" for ln in out if ln.startswith(("FAIL:", "error check="))]
    devs = sorted((int(m[2], 16), int(m[1]), int(m[3], 16)) for m in map(_MEM.match, out) if m)
    vmem = [h for h in exp.hotplug if h.kind == "virtio-mem"]
    if len(devs) != len(vmem):
        bad.append(f"the guest found {len(devs)} virtio-mem devices, expected {len(vmem)}")
    dev_zone = {d[1]: h.zone for d, h in zip(devs, vmem)}
    for d, h in zip(devs, vmem):
        if d[2] != h.size:
            bad.append(f"zone {h.zone}: virtio-mem region of {d[2]:#x}, expected {h.size:#x}")
    for m in map(_INTEGRITY.match, out):
        if m and int(m[2]):
            bad.append(f"integrity: {m[2]} pages lost their pattern in {m[1]} cycles")
    if exp.balloon_size is not None:
        feats = [int(m[1], 16) for m in map(_BALLOON_DEV.match, out) if m]
        if len(feats) != 1:
            bad.append(f"the guest found {len(feats)} balloon devices, expected 1")
        elif feats[0] != _balloon_features(balloon_opts):
            bad.append(f"balloon features {feats[0]:#x}, expected {_balloon_features(balloon_opts):#x}")
    b0 = exp.balloon_size or 0
    held, balloon_max = b0, b0
    zones = zone_lines(result["stderr"])
    bad += _check_fill(exp, out, zones, steps[0].get("smaps_before", ""), b0)
    plugged = {h.zone: h.plugged for h in vmem}
    base_res: dict[str, tuple[int, int]] = {}
    for z in exp.zones:
        if z.zone in zones and steps:
            r0 = _resident(steps[0].get("smaps_before", ""), zones[z.zone][1], zones[z.zone][2])
            if r0 is not None:
                base_res[z.zone] = (r0, plugged.get(z.zone, 0))
    dimms: list[int] = []
    total0 = _total_resident(steps[0].get("smaps_before", ""))
    for p, r in zip(planned, steps):
        where = f"step {p['name']}"
        answer = _check_answer(p, r, where)
        bad += answer
        if r.get("error") or (p["wait"] and not r.get("matched")):
            break
        if not p["wait"] and any(ln.startswith(("resize ", "dimm ")) for ln in r["lines"]):
            bad.append(f"{where}: the guest's memory changed on a request that must change "
                       f"nothing: {[ln for ln in r['lines'] if ln.startswith(('resize ', 'dimm '))]}")
        for m in map(_RESIZE.match, r["lines"]):
            if m:
                plugged[dev_zone.get(int(m[1]), "?")] = int(m[3], 16)
                if int(m[4]) != 0 or int(m[5]):
                    bad.append(f"{where}: {m[0]}")
        dimms += [int(m[3], 16) for m in map(_DIMM.match, r["lines"]) if m]
        held = next((int(m[2], 16) for m in reversed([_BALLOON.match(ln) for ln in r["lines"]])
                     if m), held)
        want = p["expect"]
        if exp.balloon_size is not None and held != want["balloon"]:
            bad.append(f"{where}: the balloon holds {held:#x} in the guest, expected "
                       f"{want['balloon']:#x}")
        balloon_max = max(balloon_max, want["balloon"])
        for zid, n in want["plugged"].items():
            if plugged.get(zid) != n:
                bad.append(f"{where}: zone {zid} has {plugged.get(zid, 0):#x} plugged in the "
                           f"guest, expected {n:#x}")
        if dimms != want["dimms"]:
            bad.append(f"{where}: DIMMs {[hex(d) for d in dimms]} in the guest, expected "
                       f"{[hex(d) for d in want['dimms']]}")
        for zid, (r0, p0) in base_res.items():
            res = _resident(r["smaps"], zones[zid][1], zones[zid][2])
            grown = want["plugged"].get(zid, 0) - p0
            if zid == exp.zones[0].zone:
                # Pages the balloon ever held stay given back: the guest only reads them after.
                grown -= balloon_max - b0
            if res is not None and abs((res - r0) - grown) > RESIDENT_SLACK:
                bad.append(f"{where}: zone {zid} holds {(res - r0) // MiB:+d} MiB on the host "
                           f"since the first step, expected {grown // MiB:+d} MiB (plugged memory "
                           f"must be resident, unplugged memory given back)")
        dimm_res = _total_resident(r["smaps"]) - total0
        if dimms and dimm_res < sum(dimms) - (balloon_max - b0) - RESIDENT_SLACK:
            bad.append(f"{where}: memvisor holds {dimm_res // MiB:+d} MiB since the first step, "
                       f"less than the {sum(dimms) // MiB} MiB of DIMMs the guest filled")
    if len(steps) < len(planned) and not bad:
        bad.append(f"only {len(steps)} of {len(planned)} steps ran")
    return bad

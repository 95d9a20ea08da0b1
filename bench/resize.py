"""Part 5: resizing a running guest through the REST API, and part 4 with every device on.

The cases join the batch of parts 2-4 (one test-host boot, or natively) and run the resize guest
(guests/resize.c: it polls its devices every 2 ms, plugs and fills every new page, then prints
`resize`/`dimm`/`balloon` and a SUMMARY). Each step is an API call whose latency is taken from
the call to the arrival of the guest's line on the console (harness/memvisor/sequence.py,
`match_seconds`); /proc/PID/status is read just before the call and as soon as the line is seen,
so an unplug's RSS drop is what the host held when the guest reported (the device discards
before it acknowledges).

    resize/<kind>/-/<repeat>    virtio-mem of one backing (grow by S, shrink by S), or `acpi`:
                                one DIMM of S (ACPI memory cannot shrink)
    balloon/anonymous/-/<repeat> desired_balloon of S from 0, boot RAM all written (fill=1)
    hold/memvisor_all_devices   virtio-mem, balloon and the API socket in use, then smaps
    hold/memvisor_acpi_devices  the same with ACPI hotplug (one VM cannot have both methods)
"""
from __future__ import annotations

import re
from typing import Any

from memvisor.sizes import format_size

from . import backings
from .guest import MEMVISOR, ZONE_DIR, Collector, Params, selected
from .stats import Figure, Ratio, figure

GUEST = MEMVISOR.parent / "guests" / "resize.elf"
MiB = 1 << 20
BOOT = 128 * MiB                 # the resize cases' boot RAM (the balloon case: 2 S)
# virtio-mem on: private anonymous, a shared memfd, a file on a tmpfs, hugetlb of 2 MiB pages.
VIRTIO_MEM = ("anonymous", "shmem", "file_shared", "hugetlb_2m")
ACPI = "acpi"                    # a DIMM of the default-selected anonymous backing
ACPI_BACKING = "anonymous"
STEP_TIMEOUT_S = 240             # 256 MiB filled under TCG in the test host: seconds, not ms
QUIET_S = 0.5                    # the guest's checks and SUMMARY after the line: let them pass
CASE_S = 90                      # boot to the first SUMMARY, and the end
VMM_GOAL_KB = 4096               # issue 11: memvisor with every device stays under 4 MiB
LIMIT = "host.limit.memset_1t"


def kinds(p: Params) -> list[str]:
    names = [b.name for b in selected(p)]
    return [k for k in VIRTIO_MEM if k in names] + ([ACPI] if ACPI_BACKING in names else [])


def _socket(name: str) -> str:
    return "/tmp/memvisor-bench-" + re.sub(r"[^a-z0-9_]", "-", name) + ".sock"


def _step(name: str, endpoint: str, body: dict[str, Any], wait: str) -> dict[str, Any]:
    return {"name": name, "call": ["PUT", endpoint, body], "wait": wait,
            "timeout": STEP_TIMEOUT_S, "quiet": QUIET_S, "sample": ["status"]}


def _vm_case(name: str, args: list[str], steps: list[dict[str, Any]], cmdline: str = "",
             hold_marker: str = "SUMMARY:") -> dict[str, Any]:
    sock = _socket(name)
    argv = [str(MEMVISOR), "-v", "--serial", "tty", "--cpus", "boot=1", *args,
            "--kernel", str(GUEST), "--api-socket", f"path={sock}"]
    if cmdline:
        argv += ["--cmdline", cmdline]
    # A socket left by a killed run would make memvisor refuse --api-socket.
    return {"name": name, "argv": argv, "hold_marker": hold_marker, "steps": steps,
            "api_socket": sock, "setup": [f"mkdir -p {ZONE_DIR}", f"rm -f {sock}"],
            "teardown": [f"rm -f {sock}"], "timeout": CASE_S + STEP_TIMEOUT_S * len(steps)}


def virtio_mem_args(b: backings.Backing, size: int) -> tuple[list[str], str, dict[str, Any]]:
    """Arguments for backing b with a virtio-mem region of `size`, the endpoint that resizes it
    and the body's fixed part (vm.resize-zone where the backing needs a zone)."""
    args = backings.memvisor_args(b, BOOT, ZONE_DIR)
    i = args.index("--memory")
    args[i + 1] += ",hotplug_method=virtio-mem"
    hot = f",hotplug_size={format_size(size)}"
    if "--memory-zone" in args:
        args[args.index("--memory-zone") + 1] += hot
        return args, "vm.resize-zone", {"id": "mem0"}
    args[i + 1] += hot
    return args, "vm.resize", {}


def _plugged(n: int) -> str:
    return rf"^resize .* plugged=0x{n:x} "


def cases(p: Params) -> list[dict[str, Any]]:
    """Every repeat of every kind, interleaved like parts 2-3; then the two hold cases."""
    s = p.resize_size
    out: list[dict[str, Any]] = []
    for i in range(p.repeat):
        for kind in kinds(p):
            if kind == ACPI:
                b = backings.by_name(ACPI_BACKING)
                args = backings.memvisor_args(b, BOOT, ZONE_DIR)
                args[args.index("--memory") + 1] += f",hotplug_method=acpi,hotplug_size={format_size(s)}"
                steps = [_step("plug", "vm.resize", {"desired_ram": BOOT + s},
                               rf"^dimm .* size=0x{s:x} ")]
            else:
                args, endpoint, body = virtio_mem_args(backings.by_name(kind), s)
                steps = [_step("plug", endpoint, {**body, "desired_ram": BOOT + s}, _plugged(s)),
                         _step("unplug", endpoint, {**body, "desired_ram": BOOT}, _plugged(0))]
            out.append(_vm_case(f"resize/{kind}/-/{i}", args, steps))
        if ACPI_BACKING in [b.name for b in selected(p)]:
            args = backings.memvisor_args(backings.by_name(ACPI_BACKING), 2 * s, ZONE_DIR)
            out.append(_vm_case(
                f"balloon/{ACPI_BACKING}/-/{i}", [*args, "--balloon", "size=0"],
                [_step("inflate", "vm.resize", {"desired_balloon": s},
                       rf"^balloon .* target=0x{s:x} actual=0x{s:x} ")], cmdline="fill=1"))
    # Part 4 with every device in use (memvisor's default backing, as part 4's hold case).
    grow = [_step("plug", "vm.resize", {"desired_ram": BOOT + s}, _plugged(s)),
            _step("balloon", "vm.resize", {"desired_balloon": 32 * MiB},
                  rf"^balloon .* actual=0x{32 * MiB:x} ")]
    hot = f"hotplug_size={format_size(s)}"
    out.append(_vm_case("hold/memvisor_all_devices/-/0",
                        ["--memory", f"size={BOOT // MiB}M,hotplug_method=virtio-mem,{hot}",
                         "--balloon", "size=0"], grow))
    dimm = [_step("plug", "vm.resize", {"desired_ram": BOOT + s}, rf"^dimm .* size=0x{s:x} "),
            grow[1]]
    out.append(_vm_case("hold/memvisor_acpi_devices/-/0",
                        ["--memory", f"size={BOOT // MiB}M,{hot}", "--balloon", "size=0"], dimm))
    return out


def host_rss_kb(status: str) -> int | None:
    """What the VMM holds: VmRSS (anonymous, file and shmem pages) plus HugetlbPages, which
    VmRSS leaves out."""
    rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    huge = re.search(r"^HugetlbPages:\s+(\d+) kB", status, re.M)
    return int(rss[1]) + (int(huge[1]) if huge else 0) if rss else None


def _why_not(r: dict[str, Any], want: int) -> str | None:
    """Why a case gave no timing, or None."""
    if r.get("lost"):
        return f"case {r['name']} not run: {r['lost']}"
    steps = r.get("steps") or []
    tail = " | ".join((r.get("stderr") or "").strip().splitlines()[-2:])
    if not steps:
        return f"memvisor exited {r.get('rc')} before the guest's first report: {tail}"
    for st in steps[:want]:
        if st.get("error"):
            return f"step {st['name']}: {st['error']}"
        if st.get("status") not in (200, 204):
            return f"step {st['name']}: HTTP {st.get('status')} {(st.get('body') or '').strip()}"
        if not st.get("matched") or "match_seconds" not in st:
            return f"step {st['name']}: the guest did not report within {STEP_TIMEOUT_S} s"
    if len(steps) < want:
        return f"only {len(steps)} of {want} steps ran"
    return None


def _rss_change_kb(st: dict[str, Any]) -> int | None:
    before = host_rss_kb((st.get("sample_before") or {}).get("status", ""))
    after = host_rss_kb((st.get("sample_at_match") or {}).get("status", ""))
    return None if before is None or after is None else after - before


def _timed(c: Collector, base: str, st: dict[str, Any], size: int, **extra: Any) -> None:
    sec = st["match_seconds"]
    c.add(f"{base}_ms", sec * 1000, "ms", bytes=size, **extra)
    c.add(f"{base}_mibps", size / MiB / sec, "MiB/s", bytes=size, **extra)


def _drop(c: Collector, name: str, st: dict[str, Any], size: int) -> None:
    change = _rss_change_kb(st)
    if change is None:
        c.skip(name, "no /proc/PID/status sample around the step")
    elif change >= 0:
        c.skip(name, f"host RSS did not go down: {change:+d} kB when the guest reported")
    else:
        c.add(name, -change / 1024, "MiB", expected_mib=size / MiB)


def figures(results: list[dict[str, Any]], p: Params) -> tuple[dict[str, Figure], dict[str, str]]:
    """Figures and skip reasons of the resize and balloon cases (the hold cases are part 4's)."""
    c = Collector()
    s = p.resize_size
    for r in results:
        part, kind = (r["name"].split("/") + [""])[:2]
        if part == "resize":
            want = 1 if kind == ACPI else 2
            why = _why_not(r, want)
            if why:
                c.skip(f"resize.{kind}", why)
                continue
            b = ACPI_BACKING if kind == ACPI else kind
            plug = r["steps"][0]
            _timed(c, f"resize.{kind}.plug", plug, s, backing=b,
                   rss_rise_kb=_rss_change_kb(plug))
            if kind != ACPI:
                _timed(c, f"resize.{kind}.unplug", r["steps"][1], s, backing=b)
                _drop(c, f"resize.{kind}.unplug_rss_drop_mib", r["steps"][1], s)
        elif part == "balloon":
            why = _why_not(r, 1)
            if why:
                c.skip("balloon", why)
                continue
            _timed(c, "balloon.inflate", r["steps"][0], s, backing=kind)
            _drop(c, "balloon.inflate_rss_drop_mib", r["steps"][0], s)
    figs = c.figures()
    skipped = {k: v for k, v in c.skipped.items() if not any(f.startswith(k + ".") for f in figs)}
    for kind in kinds(p):
        if not any(f.startswith(f"resize.{kind}.") for f in figs):
            skipped.setdefault(f"resize.{kind}", "no result")
    if ACPI_BACKING not in [b.name for b in selected(p)]:
        skipped["balloon"] = f"not selected (--only/--guest-only without {ACPI_BACKING})"
    for k in set(VIRTIO_MEM + (ACPI,)) - set(kinds(p)):
        skipped[f"resize.{k}"] = "not selected (--only/--guest-only)"
    return figs, skipped


def _fraction(figs: dict[str, Figure], num: str, den: str, name: str) -> Ratio | None:
    """A rate in MiB/s as a fraction of a host figure in GB/s of the same run: a figure of the
    per-sample fractions (against den's median) and the ratio that names it."""
    if num not in figs or den not in figs:
        return None
    ref = figs[den]["median"]
    figs[name] = figure([v * MiB / 1e9 / ref for v in figs[num]["samples"]], "x", of=den)
    return {"value": figs[name]["median"], "better": "higher", "num": num, "den": den,
            "paired": name}


def host_ratios(figs: dict[str, Figure]) -> dict[str, Ratio]:
    """Each rate against this machine's limits, measured in the same run (adds their figures
    to figs): plug against the host's first touch of the same backing (one write per 4 KiB page,
    what the guest does to a plugged page) and every rate against memset over populated memory.
    For the test host's figures too: the ratio then also says what the nesting costs."""
    out: dict[str, Ratio] = {}
    for name in sorted(figs):
        if not name.removeprefix("native.").startswith(("resize.", "balloon.")) \
                or not name.endswith("_mibps"):
            continue
        stem = name[:-len("_mibps")]
        r = _fraction(figs, name, LIMIT, f"{stem}.fraction_of_limit")
        if r:
            out[f"{stem}.fraction_of_limit"] = r
        backing = figs[name].get("backing")
        if stem.endswith(".plug") and backing:
            r = _fraction(figs, name, f"host.{backing}.first_touch.gbps",
                          f"{stem}.fraction_of_first_touch")
            if r:
                out[f"{stem}.fraction_of_first_touch"] = r
    return out

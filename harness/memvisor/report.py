"""Typed parser of the guests' reports: `memvisor-probe 1` and `memvisor-fault 1`.

The format is specified in guests/README.md ("Report format, version 1"). Unknown keys and
fields are kept in `lines` and otherwise ignored, as the compatibility rule there requires; a
known key missing a field it always has is a ReportError, so a broken guest cannot pass for a
silent one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PROBE = "memvisor-probe"
LINUX = "memvisor-linux"
FAULT = "memvisor-fault"
VERSION = 1

_BANNER = re.compile(r"(memvisor-[a-z]+) (\d+)$")
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_FIELD = re.compile(r' ([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\x[0-9a-fA-F]{2})*"|[^ "]*)')
_CHECK = re.compile(r"(PASS|FAIL|SKIP): ([a-z0-9_]+)(?: (.*))?$")
_SUMMARY = re.compile(r"SUMMARY: (ok|FAIL (\d+))(?: (.*))?$")


class ReportError(ValueError):
    """The text is not a well-formed report."""


@dataclass(frozen=True)
class Line:
    key: str
    fields: dict[str, str]
    raw: str

    def has(self, name: str) -> bool:
        return name in self.fields

    def text(self, name: str) -> str:
        try:
            return self.fields[name]
        except KeyError:
            raise ReportError(f"{self.key}: no field {name!r} in {self.raw!r}") from None

    def num(self, name: str) -> int:
        """A hexadecimal (0x...) or decimal number."""
        text = self.text(name)
        try:
            return int(text, 16) if text.startswith("0x") else int(text, 10)
        except ValueError:
            raise ReportError(f"{self.key}: {name}={text!r} is not a number") from None

    def opt_num(self, name: str) -> int | None:
        """A number, or None when the field is absent or `unknown`."""
        if name not in self.fields or self.fields[name] == "unknown":
            return None
        return self.num(name)

    def flag(self, name: str) -> bool:
        value = self.num(name)
        if value not in (0, 1):
            raise ReportError(f"{self.key}: {name}={value} is not 0 or 1")
        return bool(value)

    def nums(self, name: str) -> list[int]:
        text = self.text(name)
        try:
            return [int(x) for x in text.split(",")] if text else []
        except ValueError:
            raise ReportError(f"{self.key}: {name}={text!r} is not a list of decimals") from None


def _unquote(value: str) -> str:
    if not (len(value) >= 2 and value[0] == value[-1] == '"'):
        return value
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value[1:-1])


def parse_line(text: str) -> Line:
    """One `KEY name=value ...` line; quoted values are returned unescaped."""
    m = _KEY.match(text)
    if not m:
        raise ReportError(f"not a report line: {text!r}")
    key, rest, fields = m.group(0), text[m.end():], {}
    if key == "error":  # `error check=NAME free text`
        cm = re.match(r" check=([a-z0-9_]+)(?: (.*))?$", rest)
        if not cm:
            raise ReportError(f"bad error line: {text!r}")
        return Line(key, {"check": cm.group(1), "text": cm.group(2) or ""}, text)
    pos = 0
    while pos < len(rest):
        fm = _FIELD.match(rest, pos)
        if not fm:
            raise ReportError(f"bad field at {rest[pos:]!r} in {text!r}")
        fields[fm.group(1)] = _unquote(fm.group(2))
        pos = fm.end()
    return Line(key, fields, text)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str


@dataclass
class Report:
    """What every report has: banner, lines, checks, summary."""
    kind: str
    version: int
    lines: list[Line]
    checks: dict[str, Check]
    ok: bool
    failed: int
    summary: str

    def all(self, key: str) -> list[Line]:
        return [ln for ln in self.lines if ln.key == key]

    def one(self, key: str) -> Line | None:
        found = self.all(key)
        if len(found) > 1:
            raise ReportError(f"{key}: {len(found)} lines where one was expected")
        return found[0] if found else None

    def errors(self, check: str | None = None) -> list[str]:
        return [ln.fields["text"] for ln in self.all("error")
                if check is None or ln.fields["check"] == check]


def split_report(text: str) -> tuple[str, int, list[str]]:
    """The banner's kind and version and the lines up to and including SUMMARY."""
    lines = [ln.rstrip("\r") for ln in text.replace("\r\n", "\n").split("\n")]
    for i, ln in enumerate(lines):
        m = _BANNER.search(ln)
        if m:
            body: list[str] = []
            for ln2 in lines[i + 1:]:
                body.append(ln2)
                if ln2.startswith("SUMMARY: "):
                    return m.group(1), int(m.group(2)), body
            raise ReportError(f"{m.group(1)}: no SUMMARY line (guest died or output cut)")
    raise ReportError("no memvisor-* banner in the output")


def parse_report(text: str, kind: str | None = None) -> Report:
    rkind, version, body = split_report(text)
    if kind and rkind != kind:
        raise ReportError(f"expected a {kind} report, got {rkind}")
    if version != VERSION:
        raise ReportError(f"{rkind} version {version}, this parser knows {VERSION}")
    lines: list[Line] = []
    checks: dict[str, Check] = {}
    for ln in body[:-1]:
        if not ln:
            continue
        cm = _CHECK.match(ln)
        if cm:
            checks[cm.group(2)] = Check(cm.group(2), cm.group(1), cm.group(3) or "")
        else:
            lines.append(parse_line(ln))
    sm = _SUMMARY.match(body[-1])
    if not sm:
        raise ReportError(f"bad summary: {body[-1]!r}")
    failed = int(sm.group(2)) if sm.group(2) else 0
    n_fail = sum(c.status == "FAIL" for c in checks.values())
    if failed != n_fail and not (failed and "exception" in checks):
        raise ReportError(f"SUMMARY says {failed} failed, {n_fail} FAIL lines")
    return Report(rkind, version, lines, checks, sm.group(1) == "ok", failed, body[-1])


# ---- probe ----

@dataclass(frozen=True)
class E820Entry:
    addr: int
    size: int
    type: int

    @property
    def end(self) -> int:
        return self.addr + self.size


@dataclass(frozen=True)
class AcpiTable:
    sig: str
    addr: int
    length: int
    revision: int
    oem: str
    via: str
    checksum_ok: bool


@dataclass(frozen=True)
class MadtCpu:
    type: int
    uid: int
    apic: int
    flags: int
    enabled: bool
    online_capable: bool


@dataclass(frozen=True)
class SratCpu:
    type: int
    apic: int
    node: int
    flags: int
    enabled: bool


@dataclass(frozen=True)
class SratMem:
    node: int
    base: int
    size: int
    flags: int
    enabled: bool
    hotpluggable: bool
    nonvolatile: bool


@dataclass(frozen=True)
class SratNode:
    node: int
    cpus: int
    mem: int
    hotplug_mem: int


@dataclass(frozen=True)
class Module:
    index: int | None
    source: str
    addr: int
    size: int
    kind: str
    cmdline: str | None


@dataclass(frozen=True)
class FdtMem:
    addr: int
    size: int
    node: int | None
    hotpluggable: bool
    kind: str | None
    name: str


@dataclass(frozen=True)
class FdtCpu:
    apic: int
    node: int | None
    status: str


@dataclass(frozen=True)
class VirtioMmio:
    src: str
    name: str
    uid: int | None
    base: int | None
    size: int | None
    irq: int | None
    magic: int | None
    version: int | None
    device_id: int | None


@dataclass(frozen=True)
class Memtest:
    mode: str
    stride: int | None
    pages: int | None
    skipped: int | None
    errors: int | None
    cycles: int | None


@dataclass(frozen=True)
class CpuInfo:
    vendor: str
    family: int
    model: int
    hypervisor: str | None
    phys_bits: int
    virt_bits: int
    pdpe1gb: bool
    x2apic: bool
    bsp_apic: int
    hv_features: int | None = None   # CPUID 0x40000001 eax (KVM: the KVM_FEATURE_* bits)


@dataclass(frozen=True)
class Paging:
    page_size: int
    limit: int
    highest: int
    table_pages: int


@dataclass
class ProbeReport(Report):
    cmdline: str = ""
    cpu: CpuInfo | None = None
    tsc_khz: int | None = None
    e820: list[E820Entry] = field(default_factory=list)
    usable_ram: int = 0
    rsdp_revision: int | None = None
    tables: list[AcpiTable] = field(default_factory=list)
    madt_cpus: list[MadtCpu] = field(default_factory=list)
    srat_cpus: list[SratCpu] = field(default_factory=list)
    srat_mems: list[SratMem] = field(default_factory=list)
    srat_nodes: dict[int, SratNode] = field(default_factory=dict)
    slit: list[list[int]] | None = None
    modules: list[Module] = field(default_factory=list)
    fdt_present: bool = False
    fdt_mems: list[FdtMem] = field(default_factory=list)
    fdt_cpus: list[FdtCpu] = field(default_factory=list)
    fdt_distances: list[list[int]] | None = None
    paging: Paging | None = None
    virtio_mmio: list[VirtioMmio] = field(default_factory=list)
    dumps: dict[str, bytes] = field(default_factory=dict)
    memtest: Memtest | None = None

    def table(self, sig: str) -> AcpiTable | None:
        return next((t for t in self.tables if t.sig == sig), None)


def _cpu(ln: Line) -> CpuInfo:
    return CpuInfo(ln.text("vendor"), ln.num("family"), ln.num("model"), ln.fields.get("hypervisor"),
                   ln.num("phys_bits"), ln.num("virt_bits"), ln.flag("pdpe1gb"), ln.flag("x2apic"),
                   ln.num("bsp_apic"),
                   ln.num("hv_features") if "hv_features" in ln.fields else None)


def _matrix(rows: list[Line], size: int) -> list[list[int]]:
    matrix = [ln.nums("dist") for ln in sorted(rows, key=lambda r: r.num("from"))]
    if [ln.num("from") for ln in sorted(rows, key=lambda r: r.num("from"))] != list(range(size)) \
            or any(len(r) != size for r in matrix):
        raise ReportError(f"distance rows do not make a {size}x{size} matrix")
    return matrix


def parse_probe(text: str) -> ProbeReport:
    base = parse_report(text, PROBE)
    r = ProbeReport(**vars(base))
    dump_chunks: dict[str, list[tuple[int, bytes]]] = {}
    dump_len: dict[str, int] = {}
    for ln in r.lines:
        k = ln.key
        if k == "cmdline":
            r.cmdline = ln.text("value")
        elif k == "cpu":
            r.cpu = _cpu(ln)
        elif k == "tsc":
            r.tsc_khz = ln.opt_num("khz")
        elif k == "e820":
            r.e820.append(E820Entry(ln.num("addr"), ln.num("size"), ln.num("type")))
        elif k == "ram":
            r.usable_ram = ln.num("usable")
        elif k == "acpi_rsdp":
            r.rsdp_revision = ln.num("revision")
        elif k == "acpi_table":
            r.tables.append(AcpiTable(ln.text("sig"), ln.num("addr"), ln.num("len"), ln.num("rev"),
                                      ln.text("oem"), ln.text("via"), ln.text("checksum") == "ok"))
        elif k == "madt_cpu":
            r.madt_cpus.append(MadtCpu(ln.num("type"), ln.num("uid"), ln.num("apic"),
                                       ln.num("flags"), ln.flag("enabled"), ln.flag("online_capable")))
        elif k == "srat_cpu":
            r.srat_cpus.append(SratCpu(ln.num("type"), ln.num("apic"), ln.num("node"),
                                       ln.num("flags"), ln.flag("enabled")))
        elif k == "srat_mem":
            r.srat_mems.append(SratMem(ln.num("node"), ln.num("base"), ln.num("size"),
                                       ln.num("flags"), ln.flag("enabled"), ln.flag("hotpluggable"),
                                       ln.flag("nonvolatile")))
        elif k == "srat_node":
            n = SratNode(ln.num("node"), ln.num("cpus"), ln.num("mem"), ln.num("hotplug_mem"))
            r.srat_nodes[n.node] = n
        elif k == "module":
            r.modules.append(Module(ln.opt_num("index"), ln.text("source"), ln.num("addr"),
                                    ln.num("size"), ln.text("kind"), ln.fields.get("cmdline")))
        elif k == "fdt":
            r.fdt_present = True
        elif k == "fdt_mem":
            r.fdt_mems.append(FdtMem(ln.num("addr"), ln.num("size"), ln.opt_num("node"),
                                     ln.flag("hotpluggable"), ln.fields.get("kind"), ln.text("name")))
        elif k == "fdt_cpu":
            r.fdt_cpus.append(FdtCpu(ln.num("apic"), ln.opt_num("node"), ln.text("status")))
        elif k == "paging":
            r.paging = Paging(ln.num("page_size"), ln.num("limit"), ln.num("highest"),
                              ln.num("table_pages"))
        elif k == "virtio_mmio":
            r.virtio_mmio.append(VirtioMmio(
                ln.text("src"), ln.text("name"), ln.opt_num("uid"), ln.opt_num("base"),
                ln.opt_num("size"), ln.opt_num("irq"), ln.opt_num("magic"), ln.opt_num("version"),
                ln.opt_num("device_id")))
        elif k == "dump":
            dump_len[ln.text("name")] = ln.num("len")
            dump_chunks[ln.text("name")] = []
        elif k == "dump_data":
            dump_chunks.setdefault(ln.text("name"), []).append((ln.num("off"), bytes.fromhex(ln.text("hex"))))
        elif k == "memtest":
            r.memtest = Memtest(ln.text("mode"), ln.opt_num("stride"), ln.opt_num("pages"),
                                ln.opt_num("skipped"), ln.opt_num("errors"), ln.opt_num("cycles"))
    slit = r.one("slit")
    if slit:
        r.slit = _matrix(r.all("slit_row"), slit.num("localities"))
    dmap = r.one("fdt_distance_map")
    if dmap:
        r.fdt_distances = _matrix(r.all("fdt_dist_row"), dmap.num("nodes"))
    for name, chunks in dump_chunks.items():
        data = b"".join(c for _, c in sorted(chunks))
        if [off for off, _ in sorted(chunks)] != list(range(0, len(data), 64)) or \
                len(data) != dump_len.get(name, -1):
            raise ReportError(f"dump {name}: chunks do not add up to {dump_len.get(name)} bytes")
        r.dumps[name] = data
    return r


# ---- fault ----

@dataclass(frozen=True)
class FaultTimer:
    """The `timer` line: what one TSC read costs the guest (README, "fault")."""
    cycles: int              # median back-to-back delta: what one read adds to an interval
    min: int
    max: int
    loop_avg: int            # cycles per read over a run of reads
    ns: float | None         # cycles in ns; None without a TSC frequency


@dataclass(frozen=True)
class FaultBatches:
    """Per-touch averages of the batches after the probe, in TSC cycles, timer reads taken out."""
    size: int                # touches per batch (the last one may be shorter)
    count: int
    min: int
    median: int
    max: int


@dataclass(frozen=True)
class FaultPhase:
    stride: int
    touch: int
    base: int
    size: int
    pages: int
    cycles: int              # the whole phase as read, timer reads included
    min: int | None          # per touch; None unless per_touch is "ok" (or an old report)
    avg: int                 # per touch, timer reads taken out
    max: int | None
    ns_avg: float | None
    reads: int | None = None     # None: a report from before the `timer` line (per-touch reads)
    timer_pct: int | None = None
    per_touch: str | None = None  # "ok" or "unreliable"
    probe: int | None = None
    probe_avg: int | None = None
    batches: FaultBatches | None = None

    @property
    def batch_timed(self) -> bool:
        return self.reads is not None


@dataclass
class FaultReport(Report):
    cmdline: str = ""
    tsc_khz: int | None = None
    timer: FaultTimer | None = None      # None in reports from before the `timer` line
    floor: tuple[int, float | None] | None = None  # touch_floor (avg cycles, ns_avg)
    regions: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name: (stride, base, size)
    phases: list[FaultPhase] = field(default_factory=list)

    def phase(self, stride: int, touch: int) -> FaultPhase:
        return next(p for p in self.phases if p.stride == stride and p.touch == touch)


def _ns(ln: Line, name: str) -> float | None:
    text = ln.text(name)
    if text == "unknown":
        return None
    if not re.fullmatch(r"[0-9]+\.[0-9]+", text):
        raise ReportError(f"{ln.key}: {name}={text!r} is not a decimal fraction or unknown")
    return float(text)


def _fault_phase(ln: Line) -> FaultPhase:
    per_touch = ln.fields.get("per_touch")
    has_minmax = ln.has("min"), ln.has("max")
    if per_touch is None:       # the first format: one read per touch, min and max always there
        return FaultPhase(ln.num("stride"), ln.num("touch"), ln.num("base"), ln.num("size"),
                          ln.num("pages"), ln.num("cycles"), ln.num("min"), ln.num("avg"),
                          ln.num("max"), _ns(ln, "ns_avg"))
    if per_touch not in ("ok", "unreliable"):
        raise ReportError(f"fault: per_touch={per_touch!r} in {ln.raw!r}")
    if has_minmax != ((True, True) if per_touch == "ok" else (False, False)):
        raise ReportError(f"fault: per_touch={per_touch} needs min and max "
                          f"{'both' if per_touch == 'ok' else 'absent'}: {ln.raw!r}")
    batches = None
    if ln.has("batches"):
        batches = FaultBatches(ln.num("batch"), ln.num("batches"), ln.num("batch_min"),
                               ln.num("batch_med"), ln.num("batch_max"))
        if not (batches.count > 0 and batches.min <= batches.median <= batches.max):
            raise ReportError(f"fault: batch statistics out of order in {ln.raw!r}")
    reads, pct = ln.num("reads"), ln.num("timer_pct")
    if reads < 2 or pct > 100:     # a phase is at least one interval between two reads
        raise ReportError(f"fault: reads={reads} timer_pct={pct} in {ln.raw!r}")
    ph = FaultPhase(ln.num("stride"), ln.num("touch"), ln.num("base"), ln.num("size"),
                    ln.num("pages"), ln.num("cycles"), ln.opt_num("min"), ln.num("avg"),
                    ln.opt_num("max"), _ns(ln, "ns_avg"), reads, pct, per_touch, ln.num("probe"),
                    ln.num("probe_avg"), batches)
    if ph.pages and ph.avg * ph.pages > ph.cycles:
        raise ReportError(f"fault: avg={ph.avg} x pages={ph.pages} exceeds cycles={ph.cycles}")
    return ph


def parse_fault(text: str) -> FaultReport:
    """A fault report. Both formats are read: the first (one TSC read per touch, no `timer`
    line: check `timer` before trusting min/avg/max) and the batch-timed one."""
    base = parse_report(text, FAULT)
    r = FaultReport(**vars(base))
    for ln in r.lines:
        if ln.key == "cmdline":
            r.cmdline = ln.text("value")
        elif ln.key == "tsc":
            r.tsc_khz = ln.opt_num("khz")
        elif ln.key == "timer":
            r.timer = FaultTimer(ln.num("cycles"), ln.num("min"), ln.num("max"),
                                 ln.num("loop_avg"), _ns(ln, "ns"))
            if not r.timer.min <= r.timer.cycles <= r.timer.max:
                raise ReportError(f"timer: min <= cycles <= max does not hold: {ln.raw!r}")
        elif ln.key == "touch_floor":
            r.floor = (ln.num("avg"), _ns(ln, "ns_avg"))
        elif ln.key == "fault_region":
            r.regions[ln.text("name")] = (ln.num("stride"), ln.num("base"), ln.num("size"))
        elif ln.key == "fault":
            r.phases.append(_fault_phase(ln))
    if r.phases and (r.timer is None) != any(not p.batch_timed for p in r.phases):
        raise ReportError("fault: batch-timed `fault` lines need a `timer` line and only they")
    return r

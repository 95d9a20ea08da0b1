"""The memory options and backings, read as text from vmm/memory/options.def and backings.def.

Those two files are the one declaration of every option and backing ("each list is defined
once"); the VMM uses them as X-macros, the harness parses them here. Nothing else of the VMM is
read. `parse_group` reads one command-line value (`size=1G,shared=on`) by the declared types;
`test_values` derives from each option's type the values the conformance matrix tries.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .sizes import format_size, parse_size

TOP = Path(__file__).resolve().parents[2]
OPTIONS_DEF = TOP / "vmm" / "memory" / "options.def"
BACKINGS_DEF = TOP / "vmm" / "memory" / "backings.def"

GROUP_FLAGS = {"MEMORY": "--memory", "ZONE": "--memory-zone", "NUMA": "--numa"}

# Paths the matrix uses for file-backed zones, inside the test host.
ZONE_FILE = "/tmp/memvisor-zone.img"
ZONE_DIR = "/tmp/memvisor-zone-dir"


@dataclass(frozen=True)
class Option:
    group: str          # MEMORY, ZONE, NUMA
    name: str           # key on the command line
    type: str           # SIZE, BOOL, U32, STRING, ENUM, U8_LIST, DIST_LIST, STRING_LIST
    default: str        # "" when none
    values: tuple[str, ...]   # ENUM and BOOL values, else ()
    help: str

    @property
    def flag(self) -> str:
        return GROUP_FLAGS[self.group]


@dataclass(frozen=True)
class Backing:
    name: str
    selectors: tuple[tuple[str, str], ...]   # ("file", "PATH"), ("shared", "on"), ...
    page_size: int      # 0: the host's base page
    mapping: str        # "private" or "shared"
    description: str

    @property
    def shared(self) -> bool:
        return self.mapping == "shared"


def _split_args(text: str) -> list[str]:
    """Split a macro's arguments on commas outside double quotes, unquoting strings."""
    args: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch == "," and not quoted:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    args.append("".join(cur).strip())
    return [a[1:-1] if len(a) >= 2 and a[0] == a[-1] == '"' else a for a in args]


def _macro_lines(text: str, macro: str) -> list[list[str]]:
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(macro + "(") and s.endswith(")"):
            out.append(_split_args(s[len(macro) + 1:-1]))
    return out


def parse_options(text: str) -> list[Option]:
    opts = []
    for args in _macro_lines(text, "OPT"):
        if len(args) != 6:
            raise ValueError(f"OPT with {len(args)} arguments: {args}")
        group, name, typ, default, values, help_ = args
        if group not in GROUP_FLAGS:
            raise ValueError(f"OPT group {group!r}")
        opts.append(Option(group, name, typ, default, tuple(v for v in values.split("|") if v),
                           help_))
    return opts


def parse_backings(text: str) -> list[Backing]:
    out = []
    for args in _macro_lines(text, "BACKING"):
        if len(args) != 5:
            raise ValueError(f"BACKING with {len(args)} arguments: {args}")
        name, sel, page, mapping, desc = args
        selectors = tuple(tuple(kv.split("=", 1)) for kv in sel.split(",") if kv)
        out.append(Backing(name, selectors, int(page, 0), mapping, desc))  # type: ignore[arg-type]
    return out


@lru_cache(maxsize=None)
def options() -> tuple[Option, ...]:
    return tuple(parse_options(OPTIONS_DEF.read_text()))


@lru_cache(maxsize=None)
def backings() -> tuple[Backing, ...]:
    return tuple(parse_backings(BACKINGS_DEF.read_text()))


def group_options(group: str) -> tuple[Option, ...]:
    return tuple(o for o in options() if o.group == group)


def option(group: str, name: str) -> Option:
    for o in options():
        if o.group == group and o.name == name:
            return o
    raise KeyError(f"{group}.{name}")


def hugepage_sizes() -> list[int]:
    """Huge page sizes of the hugetlb backings, smallest first."""
    return sorted({b.page_size for b in backings() if b.page_size})


# Small sizes per SIZE option, valid for the group on the test host (64-512 MiB per VM).
# hugepage_size comes from backings.def; "0" for --memory size means "zones describe the RAM".
_SIZES: dict[tuple[str, str], list[str]] = {
    ("MEMORY", "size"): ["0", "128M", "256M"],
    ("MEMORY", "hotplug_size"): ["128M", "256M"],
    ("MEMORY", "hotplugged_size"): ["64M", "128M"],
    ("ZONE", "size"): ["64M", "128M", "256M"],
    ("ZONE", "hotplug_size"): ["128M", "256M"],
    ("ZONE", "hotplugged_size"): ["64M", "128M"],
}

# Structured NUMA values: each form the spec shows (single value, range, list).
_NUMA: dict[str, list[str]] = {
    "guest_numa_id": ["0", "1", "2"],
    "cpus": ["0", "[1-2]", "[0,3]"],
    "distances": ["[1@30]", "[1@15,2@25]"],
    "memory_zones": ["mem1", "[mem0,mem1]"],
}


def test_values(opt: Option, host_nodes: tuple[int, ...] = (0, 1)) -> list[str]:
    """The values of `opt` the conformance matrix must try at least once, from its type."""
    if opt.type in ("BOOL", "ENUM"):
        return list(opt.values)
    if opt.type == "SIZE":
        if opt.name == "hugepage_size":
            return [format_size(s) for s in hugepage_sizes()]
        return list(_SIZES[(opt.group, opt.name)])
    if opt.group == "NUMA":
        return list(_NUMA[opt.name])
    if opt.type == "U32" and opt.name == "host_numa_node":
        return [str(n) for n in host_nodes]
    if opt.type == "STRING" and opt.name == "id":
        return ["mem0", "mem1"]
    if opt.type == "STRING" and opt.name == "file":
        return [ZONE_FILE, ZONE_DIR]
    raise KeyError(f"no test values for {opt.group}.{opt.name} ({opt.type})")


# ---------------------------------------------------------------------------------------------
# Command-line values, by the types options.def declares

class ParseError(ValueError):
    """A value the declarations do not allow: the flag and what the message should name."""

    def __init__(self, option: str, keywords: list[str]) -> None:
        super().__init__(f"{option}: {' '.join(keywords)}")
        self.option, self.keywords = option, keywords


_TOP_COMMA = re.compile(r",(?![^\[]*\])")   # a comma not inside [...]


def split_options(text: str) -> list[tuple[str, str]]:
    """'a=1,b=[x,y]' -> [('a','1'), ('b','[x,y]')]: commas inside [] belong to the value."""
    out = []
    for p in _TOP_COMMA.split(text):
        if p == "":
            continue
        key, eq, value = p.partition("=")
        out.append((key.strip(), value.strip() if eq else ""))
    return out


def _list_items(raw: str) -> list[str]:
    inner = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    return [x.strip() for x in inner.split(",")] if inner.strip() else []


def _u(text: str, bits: int) -> int:
    if not text.isdigit() or int(text) >= 1 << bits:
        raise ValueError(text)
    return int(text)


def convert(opt: Option, raw: str) -> object:
    """A value of an options.def type, or ValueError."""
    t = opt.type
    if t == "SIZE":
        n = parse_size(raw)
        if n >= 1 << 64:
            raise ValueError(raw)
        return n
    if t == "BOOL":
        if raw not in ("on", "off", "true", "false"):
            raise ValueError(raw)
        return raw in ("on", "true")
    if t == "U32":
        return _u(raw, 32)
    if t == "ENUM":
        if raw not in opt.values:
            raise ValueError(raw)
        return raw
    if t == "STRING":
        if not raw:
            raise ValueError(raw)
        return raw
    if t == "U8_LIST":
        cpus: list[int] = []
        for item in _list_items(raw):
            lo, dash, hi = item.partition("-")
            a, b = _u(lo, 8), _u(hi, 8) if dash else _u(lo, 8)
            if b < a:
                raise ValueError(item)
            cpus += range(a, b + 1)
        return cpus
    if t == "DIST_LIST":
        dists = []
        for item in _list_items(raw):
            dest, at, dist = item.partition("@")
            if not at:
                raise ValueError(item)
            dists.append((_u(dest, 32), _u(dist, 8)))
        return dists
    if t == "STRING_LIST":
        items = _list_items(raw)
        if not items or any(not i for i in items):
            raise ValueError(raw)
        return items
    raise ValueError(f"type {t}")


@lru_cache(maxsize=None)
def _known(group: str) -> dict[str, Option]:
    return {o.name: o for o in group_options(group)}


def parse_group(group: str, text: str) -> dict[str, object]:
    """The options given in one --memory/--memory-zone/--numa value, converted."""
    flag = GROUP_FLAGS[group]
    known = _known(group)
    out: dict[str, object] = {}
    for key, raw in split_options(text):
        if key not in known:
            raise ParseError(flag, [key])
        try:
            out[key] = convert(known[key], raw)
        except ValueError:
            raise ParseError(flag, [key]) from None
    return out


@lru_cache(maxsize=None)
def defaults(group: str) -> tuple[tuple[str, object], ...]:
    """(name, default value or None) for each option of a group, in declaration order."""
    return tuple((o.name, convert(o, o.default) if o.default else None)
                 for o in group_options(group))

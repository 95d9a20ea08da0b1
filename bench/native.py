"""Part 1: host fault cost of every backing, natively, through build/bench/native (bench/native.c).

The hugetlb pools are raised for the run (as root) and put back afterwards; a backing whose pool
cannot be had is reported skipped with memvisor's own reason.
"""
from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import BUILD, TOP, backings
from .stats import Figure, Ratio, figure, ratio

NATIVE = BUILD / "bench" / "native"
HUGEPAGES = Path("/sys/kernel/mm/hugepages")
PAGE = 4096


def build() -> Path:
    """make the native program (linked with the VMM's objects, as the unit tests are)."""
    subprocess.run(["make", "--no-print-directory", "-s", str(NATIVE.relative_to(TOP))],
                   cwd=TOP, check=True)
    return NATIVE


def _write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n")


@contextmanager
def hugetlb_pools(size: int) -> Iterator[dict[str, Any]]:
    """Enough free pages of each hugetlb size for `size` bytes, restored on the way out."""
    state: dict[str, Any] = {}
    saved: list[tuple[Path, int]] = []
    try:
        for b in backings.all_backings():
            d = HUGEPAGES / f"hugepages-{b.page_size // 1024}kB"
            if not b.page_size:
                continue
            if not d.is_dir():
                state[d.name] = {"error": f"{d} does not exist (no {b.page_size >> 20} MiB pages)"}
                continue
            need = -(-size // b.page_size)
            total = int((d / "nr_hugepages").read_text())
            free = int((d / "free_hugepages").read_text())
            entry: dict[str, Any] = {"before": total, "needed": need}
            if free < need and os.geteuid() == 0:
                try:
                    saved.append((d / "nr_hugepages", total))
                    _write(d / "nr_hugepages", total + need - free)
                except OSError as e:
                    entry["error"] = f"cannot raise the pool: {e}"
            elif free < need:
                entry["error"] = "pool too small and not root"
            entry["free"] = int((d / "free_hugepages").read_text())
            state[d.name] = entry
        yield state
    finally:
        for path, value in saved:
            try:
                _write(path, value)
            except OSError as e:  # never hide the run's own error behind this one
                state.setdefault("restore_errors", []).append(f"{path}: {e}")


def run(size: int, repeat: int, tmpfs: str, warmup: bool = True,
        only: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the native program; its JSON records and the pool state."""
    cmd = [str(build()), "--size", str(size), "--repeat", str(repeat), "--tmpfs", tmpfs]
    if not warmup:
        cmd.append("--no-warmup")
    if only:
        cmd += ["--only", ",".join(only)]
    with hugetlb_pools(size) as pools:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=TOP)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (status {proc.returncode}):\n{proc.stderr}")
    return parse_lines(proc.stdout), pools


def parse_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def figures(records: list[dict[str, Any]]) -> tuple[dict[str, Figure], dict[str, Ratio],
                                                     dict[str, str], dict[str, Any]]:
    """Figures, ratios, skipped (name: reason) and host facts from the native records."""
    figs: dict[str, Figure] = {}
    ratios: dict[str, Ratio] = {}
    skipped: dict[str, str] = {}
    host: dict[str, Any] = {}
    for r in records:
        kind = r["kind"]
        if kind == "host":
            host = {k: v for k, v in r.items() if k != "kind"}
        elif kind == "limit":
            figs[f"host.limit.{r['name']}"] = figure(
                [r["bytes"] / ns for ns in r["ns"]], "GB/s", threads=r["threads"], bytes=r["bytes"])
        elif kind == "populate":
            pages = r["bytes"] / PAGE
            base = f"host.{r['backing']}.{r['mode']}"
            extra = {"bytes": r["bytes"], "page_size": r["page_size"], "threads": r["threads"]}
            figs[f"{base}.ns_per_page"] = figure([ns / pages for ns in r["ns"]], "ns/4KiB", **extra)
            figs[f"{base}.gbps"] = figure([r["bytes"] / ns for ns in r["ns"]], "GB/s", **extra)
            if r.get("limit_ns"):   # the limit measured right before each sample
                figs[f"{base}.fraction_of_limit"] = figure(
                    [lim / ns for lim, ns in zip(r["limit_ns"], r["ns"])], "x",
                    limit_threads=r["limit_threads"], **extra)
        elif kind == "skip":
            if r["backing"] == "limit":
                skipped[f"host.limit.{r['mode']}"] = r["reason"]
            elif r["mode"] == "*":
                skipped[f"host.{r['backing']}"] = r["reason"]
            else:
                skipped[f"host.{r['backing']}.{r['mode']}"] = r["reason"]
    for name in list(figs):
        if name.endswith(".gbps"):
            limit = "host.limit.memset_nt" if figs[name]["threads"] == 0 else "host.limit.memset_1t"
            frac = name[:-len("gbps")] + "fraction_of_limit"
            if frac in figs:
                # median of the per-sample fractions; num/den say what they are fractions of
                ratios[frac] = {"value": figs[frac]["median"], "better": "higher", "num": name,
                                "den": limit, "paired": frac}
            elif limit in figs:
                ratios[frac] = ratio(name, limit, figs, "higher")
    if "host.limit.kzero_2m" in figs and "host.limit.memset_1t" in figs:
        ratios["host.limit.kzero_2m.fraction_of_limit"] = ratio(
            "host.limit.kzero_2m", "host.limit.memset_1t", figs, "higher")
    return figs, ratios, skipped, host

"""PNG bar charts of a results.json (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

MODES = ("first_touch", "prefault_serial", "prefault_parallel")


def _bars(ax: Any, groups: list[str], series: list[tuple[str, list[float | None],
                                                     list[tuple[float, float] | None]]]) -> None:
    """Grouped bars; None values are left out; errors are (low, high) around the value."""
    width = 0.8 / max(len(series), 1)
    for i, (label, values, errs) in enumerate(series):
        xs = [g + i * width - 0.4 + width / 2 for g in range(len(groups))]
        pts = [(x, v, e) for x, v, e in zip(xs, values, errs) if v is not None]
        if not pts:
            continue
        lo = [v - e[0] if e else 0 for _, v, e in pts]
        hi = [e[1] - v if e else 0 for _, v, e in pts]
        ax.bar([x for x, _, _ in pts], [v for _, v, _ in pts], width, label=label,
               yerr=[lo, hi], capsize=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "nothing measured", transform=ax.transAxes, ha="center")


def _fig(res: dict[str, Any], name: str) -> tuple[float | None, tuple[float, float] | None]:
    f = res["figures"].get(name)
    return (f["median"], (f["min"], f["max"])) if f else (None, None)


def host_fraction(res: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    groups = res["backings"]
    series = []
    for m in MODES:
        vals: list[float | None] = []
        errs: list[tuple[float, float] | None] = []
        for b in groups:
            r = res["ratios"].get(f"host.{b}.{m}.fraction_of_limit")
            vals.append(r["value"] if r else None)
            if r and r.get("paired"):  # per-sample fractions: their own spread
                f = res["figures"][r["paired"]]
                errs.append((f["min"], f["max"]))
            elif r:  # the spread of the backing's samples against the limit's median
                f, lim = res["figures"][r["num"]], res["figures"][r["den"]]["median"]
                errs.append((f["min"] / lim, f["max"] / lim))
            else:
                errs.append(None)
        series.append((m, vals, errs))
    return _log_chart(fig, ax, groups, series, "populate bandwidth / memset bandwidth",
                      f"Host: populating {res['params']['size'] >> 20} MiB as a fraction of the "
                      "memset limit (log)", out / "host_fault.png")


def guest_fault(res: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    groups = res["backings"]
    series = []
    for label, key in (("4 KiB first touch", "fault_4k_first"), ("4 KiB second touch", "fault_4k_second"),
                       ("2 MiB stride first touch", "fault_2m_first")):
        pairs = [_fig(res, f"guest.{b}.{key}") for b in groups]
        series.append((label, [v for v, _ in pairs], [e for _, e in pairs]))
    _bars(ax, groups, series)
    ax.set_yscale("log")
    ax.set_ylabel("ns per touch (guest TSC)")
    ax.set_title("Guest (in the test host): fault guest, first versus second touch")
    return _save(fig, out / "guest_fault.png")


def boot(res: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4.5))
    groups = res["backings"] + ["memvisor (process)", "QEMU (process)"]
    series = []
    for label, suffix in (("first instruction", "entry_ms"), ("exit", "exit_ms"),
                          ("exit, prefault=on", "prefault.exit_ms")):
        pairs = [_fig(res, f"boot.{b}.{suffix}") for b in res["backings"]] + [(None, None)] * 2
        series.append((label, [v for v, _ in pairs], [e for _, e in pairs]))
    whole = [(None, None)] * len(res["backings"]) + [_fig(res, "boot.memvisor.process_ms"),
                                                      _fig(res, "boot.qemu.process_ms")]
    series.append(("whole process (hyperfine)", [v for v, _ in whole], [e for _, e in whole]))
    _bars(ax, groups, series)
    ax.set_ylabel("ms")
    ax.set_title(f"Boot of the probe in the test host ({res['params']['boot_size'] >> 20} MiB; "
                 "whole process: 128 MiB)")
    return _save(fig, out / "boot.png")


def resize(res: dict[str, Any], out: Path) -> Path:
    """Part 5: plug, unplug and balloon rates per kind, in each venue that measured them."""
    from .resize import ACPI, VIRTIO_MEM
    fig, ax = plt.subplots(figsize=(10, 4.5))
    kinds = list(VIRTIO_MEM) + [ACPI]
    groups = kinds + ["balloon inflate"]
    series = []
    for prefix, where in (("", "test host"), ("native.", "native")):
        for label, key in (("plug", "plug_mibps"), ("unplug", "unplug_mibps")):
            pairs = [_fig(res, f"{prefix}resize.{k}.{key}") for k in kinds]
            pairs.append(_fig(res, f"{prefix}balloon.inflate_mibps") if key == "plug_mibps"
                         else (None, None))
            series.append((f"{label} ({where})", [v for v, _ in pairs], [e for _, e in pairs]))
    return _log_chart(fig, ax, groups, series, "MiB/s (size / API call to the guest's report)",
                      f"Resize through the API, {res['params'].get('resize_size', 256 << 20) >> 20}"
                      " MiB (the guest fills each plugged page)", out / "resize.png")


def _log_chart(fig: Any, ax: Any, groups: list[str], series: list[Any], ylabel: str, title: str,
               path: Path) -> Path:
    _bars(ax, groups, series)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_all(res: dict[str, Any], out: Path) -> list[Path]:
    return [host_fraction(res, out), guest_fault(res, out), boot(res, out), resize(res, out)]

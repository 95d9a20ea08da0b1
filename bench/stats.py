"""Figures (a unit and repeated samples, summarised by median and spread) and ratios of them."""
from __future__ import annotations

import statistics
from typing import Any

Figure = dict[str, Any]
Ratio = dict[str, Any]


def figure(samples: list[float], unit: str, **extra: Any) -> Figure:
    """Median, min, max and the quartiles (the median when there are fewer than 2 samples)."""
    if not samples:
        raise ValueError("a figure needs at least one sample")
    s = sorted(float(x) for x in samples)
    q1, q3 = (statistics.quantiles(s, n=4, method="inclusive")[::2] if len(s) > 1
              else (s[0], s[0]))
    return {"unit": unit, "median": statistics.median(s), "min": s[0], "max": s[-1],
            "q1": q1, "q3": q3, "n": len(s), "samples": [float(x) for x in samples], **extra}


def ratio(num: str, den: str, figures: dict[str, Figure], better: str, **extra: Any) -> Ratio:
    """median(num) / median(den), two figures of the same run. `better`: higher or lower."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better={better!r}")
    value = figures[num]["median"] / figures[den]["median"]
    return {"value": value, "better": better, "num": num, "den": den, **extra}


def spread(f: Figure) -> float:
    """(max - min) / median: how noisy a figure was."""
    return (f["max"] - f["min"]) / f["median"] if f["median"] else 0.0

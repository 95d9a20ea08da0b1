"""memvisor's benchmarks: `python3 -m bench run` and `python3 -m bench check` (see bench/README.md).

Figures measured side by side in one run and compared as ratios of that run, because the
machines this runs on are shared and noisy. The list of backings is vmm/memory/backings.def,
read through the harness (harness/memvisor/optionspec.py), never repeated here.
"""
from __future__ import annotations

import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
BUILD = TOP / "build"
OUT = BUILD / "bench"

# `make bench` puts harness/ on PYTHONPATH; a bare `python3 -m bench` from the top works too.
_HARNESS = str(TOP / "harness")
if _HARNESS not in sys.path:
    sys.path.append(_HARNESS)

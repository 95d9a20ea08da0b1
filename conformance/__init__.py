"""The conformance matrix behind `make conformance`: cases.py generates it, __main__ runs it."""
import sys
from pathlib import Path

_HARNESS = str(Path(__file__).resolve().parents[1] / "harness")
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

"""Shared pytest setup for harness/tests: the `memvisor` package (harness/memvisor) is importable."""
import sys
from pathlib import Path

_HARNESS = str(Path(__file__).resolve().parents[1])
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

# The top of the tree, for the `conformance` package (the generated matrix).
_TOP = str(Path(__file__).resolve().parents[2])
if _TOP not in sys.path:
    sys.path.append(_TOP)

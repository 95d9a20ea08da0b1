"""make fuzz: every libFuzzer target of fuzz/ builds, runs briefly and finds nothing.

A short run (FUZZ_TIME seconds each, 8 by default here; the seeds and the regression inputs of
fuzz/corpus/ run first) keeps `make test` honest about the targets without the 600 s of a real
campaign; `make fuzz` is that campaign. Each target's line must show executions and no crash.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^fuzz: (\S+) execs=(\d+) crashes=(\d+)$")


def targets() -> list[str]:
    return sorted(p.stem for p in (TOP / "fuzz").glob("*.c"))


def test_fuzz_targets_run_clean() -> None:
    seconds = os.environ.get("FUZZ_TEST_TIME", "8")
    r = subprocess.run(["make", "--no-print-directory", "-j2", "fuzz", f"FUZZ_TIME={seconds}"],
                       cwd=TOP, capture_output=True, text=True, timeout=600)
    lines = {m.group(1): (int(m.group(2)), int(m.group(3)))
             for m in map(LINE.match, r.stdout.splitlines()) if m}
    assert sorted(lines) == targets(), r.stdout + r.stderr[-2000:]
    for name, (execs, crashes) in lines.items():
        assert execs > 0, f"{name} ran nothing"
        assert crashes == 0, f"{name} crashed: see build/fuzz/logs/{name}.log\n{r.stderr[-2000:]}"
    assert r.returncode == 0, r.stderr[-2000:]

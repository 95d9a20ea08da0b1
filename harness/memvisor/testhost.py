"""Run a batch of cases through ci/testhost (or directly where /dev/kvm works)."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from .driver import BUILD, TOP

TESTHOST = TOP / "ci" / "testhost"
PYTHON = "/usr/bin/python3"


def run_batch(cases: list[dict], timeout: int = 1500, opts: tuple[str, ...] = ()) -> list[dict]:
    """Run every case in one test-host boot; returns one result dict per case, in order."""
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="batch.") as d:
        cases_file, results_file = Path(d) / "cases.json", Path(d) / "results.json"
        cases_file.write_text(json.dumps(cases))
        env = dict(os.environ, PYTHONPATH=str(TOP / "harness"))
        cmd = [str(TESTHOST), "--timeout", str(timeout), *opts, "--",
               PYTHON, "-m", "memvisor.inhost", str(cases_file), str(results_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=TOP,
                              timeout=timeout + 60)
        if proc.returncode != 0 or not results_file.exists():
            raise RuntimeError(f"test-host batch failed (status {proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return json.loads(results_file.read_text())

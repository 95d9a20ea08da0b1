"""Inside the test host: run the batch's cases one by one (harness/memvisor/inhost.run_case) and
append each result to a JSON-lines file in the work tree as soon as it is known, so that a test
host that hangs part-way still leaves the results of every case before the hang.

    python3 -m bench.inhost CASES.json RESULTS.jsonl
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from memvisor.inhost import run_case


def main(argv: list[str]) -> int:
    cases = json.loads(Path(argv[1]).read_text())
    with open(argv[2], "a") as out:
        for i, case in enumerate(cases, 1):
            print(f"[{i}/{len(cases)}] {case['name']}: started", flush=True)
            r = run_case(case)
            out.write(json.dumps(r) + "\n")
            out.flush()
            os.fsync(out.fileno())
            print(f"[{i}/{len(cases)}] {case['name']}: rc={r['rc']} {r['seconds']}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

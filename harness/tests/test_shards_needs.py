"""conformance: stable shards that merge back into the whole matrix; native host needs."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from conformance import cases as matrix
from conformance import needs, results, run
from conformance.results import Outcome

TOP = Path(__file__).resolve().parents[2]
FULL = matrix.generate("full")
BY_NAME = {c.name: c for c in FULL}


def test_shards_partition_the_matrix() -> None:
    for n in (1, 2, 3, 7):
        slices = [[c.name for c in FULL if run.shard_of(c.name, n) == k] for k in range(1, n + 1)]
        assert sorted(sum(slices, [])) == sorted(c.name for c in FULL)
        assert all(slices), f"an empty slice among {n}"


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3"])
def test_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        run.parse_shard(text)


def _fake_shard(out: Path, names: list[str], shard: list[int], failed: str = "") -> None:
    outs = [Outcome(BY_NAME[n], ["wrong"] if n == failed else [], 1.0,
                    {"venue": "testhost", "argv": ["x"], "rc": 0, "stdout": "", "stderr": ""})
            for n in names]
    recs = [results.case_record(o) for o in outs]
    results.write(recs, {o.case.name: o.result for o in outs},
                  {"mode": "full", "pattern": None, "shard": shard}, out)


def test_merge_joins_shards_and_sees_gaps_and_overlaps(tmp_path: Path) -> None:
    names = [c.name for c in FULL]
    a = [n for n in names if run.shard_of(n, 2) == 1]
    b = [n for n in names if run.shard_of(n, 2) == 2]
    _fake_shard(tmp_path / "s1", a, [1, 2])
    _fake_shard(tmp_path / "s2", b, [2, 2], failed=b[0])
    doc, problems = results.merge([tmp_path / "s1", tmp_path / "s2"], tmp_path / "all")
    assert problems == []
    assert [c["name"] for c in doc["cases"]] == names          # matrix order
    assert (doc["passed"], doc["failed"]) == (len(names) - 1, 1)
    junit = (tmp_path / "all" / "junit.xml").read_text()
    assert junit.count("<testcase") == len(names) and junit.count("<failure") == 1
    _, problems = results.merge([tmp_path / "s1", tmp_path / "s1"], tmp_path / "bad")
    assert any("in 2 shards" in p for p in problems)
    assert any("in no shard" in p for p in problems)


def test_merge_command_exit_status(tmp_path: Path) -> None:
    names = [c.name for c in FULL]
    _fake_shard(tmp_path / "s1", names[:50], [1, 1])
    env = dict(os.environ, PYTHONPATH=f"{TOP / 'harness'}:{TOP}")
    p = subprocess.run(["/usr/bin/python3", "-m", "conformance", "merge", "--out",
                        str(tmp_path / "m"), str(tmp_path / "s1")], cwd=TOP, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and f"{len(names) - 50} cases of the matrix are in no shard" in p.stdout
    assert json.loads((tmp_path / "m" / "results.json").read_text())["passed"] == 50


def test_needs_on_a_one_node_host_without_pools() -> None:
    th = matrix.testhost_facts()
    small = replace(th, nodes=(0,), free_hugepages={s: {0: 0} for s in th.hugepage_sizes})
    assert needs.unmet(BY_NAME["anonymous"], small) is None
    assert needs.unmet(BY_NAME["anonymous"], th) is None
    assert "host NUMA node 1" in (needs.unmet(BY_NAME["host-nodes"], small) or "")
    assert "1 free 1 GiB huge pages" in (needs.unmet(BY_NAME["hugetlb-1g-zone"], small) or "")
    assert needs.unmet(BY_NAME["hugetlb-1g-zone"], th) is None
    # a rejection whose outcome does not depend on the host runs anywhere
    assert needs.unmet(BY_NAME["rej-parse-list-without-brackets"], small) is None

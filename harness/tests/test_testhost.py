"""ci/testhost: KVM inside a QEMU test host, exit status propagated, NUMA and page pools."""
import os
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
TESTHOST = TOP / "ci" / "testhost"


def run_testhost(*cmd: str, opts: tuple[str, ...] = ("--force",), timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(TESTHOST), *opts, "--", *cmd], capture_output=True, text=True,
                          timeout=timeout, cwd=TOP)


@pytest.fixture(scope="module")
def facts() -> dict[str, str]:
    """One boot gathers every fact the tests below check (a boot costs ~15 s)."""
    script = ("test -c /dev/kvm && echo kvm=yes; "
              "echo nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l); "
              "echo hp2m=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages); "
              "echo hp1g=$(cat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages); "
              "for n in 0 1; do echo hp1g_node$n=$(cat /sys/devices/system/node/node$n/hugepages/hugepages-1048576kB/nr_hugepages); done; "
              "echo cwd=$(pwd); echo env=$MEMVISOR_PROBE; "
              "echo written > build/testhost-write-check; "
              "echo to-stderr >&2; exit 7")
    env = dict(os.environ, MEMVISOR_PROBE="passed-through")
    r = subprocess.run([str(TESTHOST), "--force", "--", "sh", "-c", script], capture_output=True,
                       text=True, timeout=300, cwd=TOP, env=env)
    out = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    out["rc"] = str(r.returncode)
    out["stderr"] = r.stderr
    return out


def test_kvm_works_inside(facts: dict[str, str]) -> None:
    assert facts.get("kvm") == "yes"


def test_two_numa_nodes_and_pools(facts: dict[str, str]) -> None:
    assert facts["nodes"] == "2"
    assert facts["hp2m"] == "512"
    assert facts["hp1g"] == "2"
    assert facts["hp1g_node0"] == "1" and facts["hp1g_node1"] == "1"


def test_same_directory_environment_and_writable_tree(facts: dict[str, str]) -> None:
    assert facts["cwd"] == str(TOP)
    assert facts["env"] == "passed-through"
    check = TOP / "build" / "testhost-write-check"
    assert check.read_text() == "written\n"
    check.unlink()


def test_exit_status_and_stderr_propagate(facts: dict[str, str]) -> None:
    assert facts["rc"] == "7"
    assert "to-stderr" in facts["stderr"]


def test_bad_option_fails_fast() -> None:
    r = run_testhost("true", opts=("--nodes", "x"), timeout=10)
    assert r.returncode == 125
    assert "--nodes: 'x' is not a number" in r.stderr


def test_time_limit_kills_and_shows_console() -> None:
    runs = TOP / "build" / "testhost-runs-check"
    runs.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(TESTHOST), "--force", "--timeout", "20", "--", "sleep", "600"],
                       capture_output=True, text=True, timeout=90, cwd=TOP,
                       env=dict(os.environ, TESTHOST_RUNS=str(runs)))
    assert r.returncode == 125
    assert "time limit of 20s reached" in r.stderr
    assert "test host console" in r.stderr
    assert not list(runs.iterdir()), "control directory left behind"
    runs.rmdir()
    assert not subprocess.run(["pgrep", "-f", f"testhost.ctl={runs}"]).returncode == 0, \
        "a QEMU of this run is still alive"

"""One ci/testhost boot for a whole batch, as harness/memvisor/testhost.run_batch, but with the
in-host progress lines (`[i/n] case: rc= s`) streamed to our stderr: a full run is many minutes
in the test host and should not be silent."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from memvisor.testhost import PYTHON, TESTHOST

from . import BUILD, TOP


def other_testhosts() -> list[int]:
    """PIDs of test hosts already running on this machine (anyone's): two at once on the
    development machines' 2 shared cores would make both too slow to time, or worse."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1].endswith(b"ci/testhost"):
            pids.append(int(d.name))
    return pids


def wait_for_other_testhosts(limit_s: float, log: Any = sys.stderr) -> None:
    deadline = time.monotonic() + limit_s
    busy = other_testhosts()
    if busy:
        print(f"bench: waiting for the test host(s) already running (pid {busy}) to finish",
              file=log, flush=True)
    while busy and time.monotonic() < deadline:
        time.sleep(5)
        busy = other_testhosts()
    if busy:
        print(f"bench: still running after {limit_s:.0f} s: going ahead", file=log, flush=True)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _watchdog(proc: subprocess.Popen, last: list[float], limit: list[int],
              stalled: threading.Event) -> None:
    """Stop our test host (our own processes, by pid) when no case has finished for stall_s:
    a hung test host would otherwise hold the machine until its --timeout."""
    while proc.poll() is None:
        time.sleep(5)
        if time.monotonic() - last[0] > limit[0] and proc.poll() is None:
            stalled.set()
            for pid in reversed(_descendants(proc.pid)):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            proc.terminate()
            return


def run_batch(cases: list[dict[str, Any]], timeout: int, log: Any = sys.stderr,
              wait_s: float = 1800, stall_s: int = 300) -> list[dict[str, Any]]:
    """Run the cases in one test-host boot; one result per case, in order. A case the test host
    never finished (it hung: no progress for the case's timeout + 60 s, or the boot's stall_s)
    comes back with rc None and `lost` saying why."""
    wait_for_other_testhosts(wait_s, log)
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="batch.") as d:
        cases_file, results_file = Path(d) / "cases.json", Path(d) / "results.jsonl"
        cases_file.write_text(json.dumps(cases))
        env = dict(os.environ, PYTHONPATH=f"{TOP / 'harness'}:{TOP}")
        cmd = [str(TESTHOST), "--timeout", str(timeout), "--",
               PYTHON, "-m", "bench.inhost", str(cases_file), str(results_file)]
        tail: list[str] = []
        last = [time.monotonic()]
        limit = [stall_s]           # the first one covers the boot
        stalled = threading.Event()
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, cwd=TOP, errors="replace") as proc:
            assert proc.stdout is not None
            dog = threading.Thread(target=_watchdog, args=(proc, last, limit, stalled),
                                   daemon=True)
            dog.start()
            for line in proc.stdout:
                tail = (tail + [line])[-40:]
                m = re.match(r"\[(\d+)/\d+\] ", line)
                if m:   # the stall limit follows the case under way: its own timeout + 60 s
                    last[0] = time.monotonic()
                    limit[0] = int(cases[int(m.group(1)) - 1].get("timeout", 120)) + 60
                if m and not line.rstrip().endswith(": started"):
                    print(f"bench:   {line.rstrip()}", file=log, flush=True)
            rc = proc.wait()
        done = [json.loads(ln) for ln in results_file.read_text().splitlines()
                if ln.strip()] if results_file.exists() else []
        if len(done) < len(cases):
            why = (f"the test host stalled (no progress in {limit[0]} s) and was stopped"
                   if stalled.is_set() else f"ci/testhost exited {rc}")
            at = cases[len(done)]["name"]
            print(f"bench: {why} during case {at}; {len(done)} of {len(cases)} cases done.\n"
                  + "".join(tail[-15:]), file=log, flush=True)
            for c in cases[len(done):]:
                done.append({"name": c["name"], "argv": c["argv"], "rc": None, "stdout": "",
                             "stderr": "", "seconds": 0.0, "lost": f"{why} during case {at}"})
        return done

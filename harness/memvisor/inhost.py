"""Run a batch of VMM processes where /dev/kvm works and record what the host saw.

    python3 -m memvisor.inhost CASES.json RESULTS.jsonl

Test-host boots are expensive (~15 s), so one boot runs many cases: this module is what runs
inside it (and, natively, what harness/memvisor/runner.py calls case by case). For each case it
records the huge page counters before, starts the VMM, and when the guest holds after its report
(the probe's `hold` mode: its SUMMARY line is out and it halts) it runs the case's resize
`steps`, if any (sequence.py), samples /proc/PID/smaps, numa_maps and status and the counters,
then stops the VMM with SIGTERM. Cases that do not hold
simply run to their exit. Parsing is left to the caller.

Each result is appended to RESULTS.jsonl (and fsynced) as soon as it is known, then a progress
line is printed; the runner outside the test host reads both, so that a test host that freezes
part-way has still delivered every case before the freeze:
    [i/n] NAME: started
    [i/n] NAME: rc=STATUS SECONDSs
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .hoststate import hugepage_counters, read_proc
from .qmp import Qmp, QmpError, query_all
from .sequence import run_steps


def _reader(stream, sink: list[str], marker: str | None, seen: threading.Event,
            times: list[float] | None = None) -> None:
    for line in iter(stream.readline, ""):
        if times is not None:
            times.append(time.monotonic())   # first: a line in sink always has its time
        sink.append(line)
        if marker and line.startswith(marker):
            seen.set()
    if times is not None:
        # End of the output: the VMM's exit closed the pipe (found without _wait's polling).
        times.append(time.monotonic())
    seen.set()


def _console_excerpt(stdout: str) -> list[str]:
    """The console's last lines and, where the kernel warned or oopsed first, that report from
    its start: the end of a hung boot's console is often the tail of a trace whose head says why."""
    lines = stdout.strip().splitlines()
    first = next((i for i, ln in enumerate(lines)
                  if "cut here" in ln or "WARNING:" in ln or "BUG:" in ln), None)
    if first is None or first >= len(lines) - 3:
        return lines[-3:]
    return lines[first:first + 40] + (["..."] + lines[-3:] if first + 40 < len(lines) - 3
                                      else lines[first + 40:])


def run_case(case: dict) -> dict:
    """One case; a case with `attempts` > 1 is run again when it timed out (a guest that hung),
    or, with `end_lines` (a regex), when the VMM ended without any such line on the console
    (the guest's kernel never said how it ended: it was cut short), up to that many times in
    all. The earlier attempts are kept in the result (`hung_attempts`, `cut_attempts`): what the
    vCPUs were doing and the console's end, so that a retried case never hides what happened."""
    hung: list[dict] = []
    cut: list[dict] = []
    attempts = int(case.get("attempts", 1))
    ended = re.compile(case["end_lines"], re.M) if case.get("end_lines") else None
    for attempt in range(1, attempts + 1):
        result = _attempt(case)
        was_cut = (not result["timed_out"] and ended is not None
                   and not ended.search(result["stdout"]))
        if not (result["timed_out"] or was_cut) or attempt == attempts:
            break
        if was_cut:
            cut.append({"seconds": result["seconds"], "rc": result["rc"],
                        "console_tail": _console_excerpt(result["stdout"])})
            continue
        hung.append({"seconds": result["seconds"],
                     "vcpus": [ln for ln in result["stderr"].splitlines()
                               if " at stop: " in ln or " stack text:" in ln],
                     "console_tail": _console_excerpt(result["stdout"])})
    result["hung_attempts"] = hung
    result["cut_attempts"] = cut
    return result


def _attempt(case: dict) -> dict:
    result: dict = {"name": case["name"], "argv": case["argv"], "setup_errors": []}
    for pre in case.get("setup", []):
        p = subprocess.run(pre, shell=True, capture_output=True, text=True)
        if p.returncode:
            result["setup_errors"].append(f"{pre!r}: status {p.returncode} {p.stderr.strip()}")
    result["hp_before"] = hugepage_counters()
    hold_marker = case.get("hold_marker")
    start = time.monotonic()
    # Its own process group: a timed-out case is killed with its children, which would
    # otherwise hold the output pipes open (and this runner) until they end.
    typed = case.get("input")
    # Steps that type into the guest's console keep memvisor's stdin open until the end.
    console = typed or any(s.get("type") for s in case.get("steps") or [])
    proc = subprocess.Popen(case["argv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if console else subprocess.DEVNULL, text=True,
                            errors="replace", start_new_session=True)
    out: list[str] = []
    out_times: list[float] = []     # when each console line arrived (resize latencies)
    err: list[str] = []
    held = threading.Event()
    t_out = threading.Thread(target=_reader, args=(proc.stdout, out, hold_marker, held, out_times))
    t_err = threading.Thread(target=_reader, args=(proc.stderr, err, None, threading.Event()))
    t_out.start()
    t_err.start()
    if typed:
        threading.Thread(target=_type, args=(proc, out, typed), daemon=True).start()
    if case.get("triggers"):
        result["triggered"] = []
        threading.Thread(target=_triggers, args=(proc, out, err, case["triggers"],
                                                 result["triggered"]), daemon=True).start()
    # One budget for the whole case: the runner outside allows timeout + a margin before it
    # declares the test host stalled. A guest whose console stays silent for `idle_timeout`
    # seconds (a booting kernel never is) is taken as hung at once, not at the deadline.
    deadline = start + case.get("timeout", 120)
    idle = case.get("idle_timeout")
    result["timed_out"] = False
    ended = "done"
    if hold_marker:
        ended = _wait(lambda: held.is_set() or proc.poll() is not None, deadline, idle, out)
        # `held` is also set at the end of the output (to wake _wait): a VMM that refused may
        # not be reaped yet when its stdout closes, and is no held guest.
        marked = any(ln.startswith(hold_marker) for ln in out)
        if ended == "done" and held.is_set() and marked and proc.poll() is None:
            qmp = case.get("qmp")
            if qmp:     # QEMU: what the configuration needs once it runs, before any step
                result["qmp"] = _qmp_start(qmp)
            if case.get("steps"):
                # A resize sequence: API calls, each followed by the guest and the host.
                result["steps"] = run_steps(case, proc.pid, out, lambda: proc.poll() is None,
                                            out_times, lambda text: _send(proc, text))
            if qmp and "error" not in result["qmp"]:
                result["qmp"].update(query_all(qmp["socket"], qmp.get("queries", [])))
            # The report is out and the guest is halted: the host state is the steady state.
            time.sleep(case.get("settle", 0.2))
            result["during"] = {name: read_proc(proc.pid, name)
                                for name in ("smaps", "numa_maps", "status")}
            result["hp_during"] = hugepage_counters()
            proc.send_signal(case.get("stop_signal") or signal.SIGTERM)
            idle = None     # a held guest is silent by design
    if ended == "done":
        ended = _wait(lambda: proc.poll() is not None, max(deadline, time.monotonic() + 1.0),
                      idle, out)
    if ended != "done":
        result["timed_out"] = True
        if ended == "silent":
            result["silent_s"] = idle
        result["stuck"] = _stacks(proc.pid)
        unkillable = _stop_group(proc)
        if unkillable:
            result["unkillable"] = unkillable
    t_out.join()
    t_err.join()
    result.update(rc=proc.returncode, stdout="".join(out), stderr="".join(err),
                  seconds=round(time.monotonic() - start, 3), hp_after=hugepage_counters())
    if case.get("stamp_lines"):
        # Seconds from just before the VMM was started to each console line's arrival, and
        # to the end of its output (bench/linux.py: boot times).
        result["line_times"] = [round(t - start, 6) for t in out_times[:len(out)]]
        result["eof_s"] = round(out_times[-1] - start, 6) if len(out_times) > len(out) else None
    result["files_after"] = {p: _file_facts(p) for p in case.get("files", [])}
    if case.get("layout_argv"):
        # --print-layout validates against this host (nodes, pools): it runs where the case ran.
        lay = subprocess.run(case["layout_argv"], capture_output=True, text=True, timeout=30)
        result["layout"] = {"rc": lay.returncode, "stdout": lay.stdout, "stderr": lay.stderr}
    for post in case.get("teardown", []):
        subprocess.run(post, shell=True, check=False)
    return result


def _await_line(proc: subprocess.Popen, lines: list[str], pat: re.Pattern, poll_s: float,
                since: int = 0, until: float | None = None) -> bool:
    """Wait for a line of `lines[since:]` (filled by a reader thread) that `pat` finds: True,
    or False once the VMM has ended without one (a trigger never fires at a VMM that is
    gone), or at monotonic time `until`."""
    seen = since
    while proc.poll() is None:
        upto = len(lines)
        if any(pat.search(ln) for ln in lines[seen:upto]):
            return True
        if until is not None and time.monotonic() >= until:
            return False
        seen = upto
        time.sleep(poll_s)
    return False


READY_TRIES, READY_RETRY_S = 30, 2.0


def _type(proc: subprocess.Popen, out: list[str], typed: dict) -> None:
    """The guest's keyboard (its serial input): `text` once a console line contains `after`
    (the guest's shell is up, so nothing typed is lost to a port not yet opened), then EOF.
    With `ready` ({"text", "line"}), that text is typed first, again each READY_RETRY_S, until
    a console line matches `line`: the shell is then reading what it is given. (busybox ash's
    line editing asks the terminal for the cursor position, ESC[6n, and lines typed before it
    reads its answer were seen lost.)"""
    assert proc.stdin is not None
    if not _await_line(proc, out, re.compile(re.escape(typed["after"])), 0.1):
        return
    try:
        ready = typed.get("ready")
        if ready:
            pat = re.compile(ready["line"])
            for _ in range(READY_TRIES):
                seen = len(out)
                proc.stdin.write(ready["text"])
                proc.stdin.flush()
                if _await_line(proc, out, pat, 0.05, seen, time.monotonic() + READY_RETRY_S):
                    break
        proc.stdin.write(typed["text"])
        proc.stdin.close()
    except OSError:
        pass    # the VMM ended meanwhile: its status tells


def _triggers(proc: subprocess.Popen, out: list[str], err: list[str], triggers: list[dict],
              done: list[dict]) -> None:
    """Fault injection at a stage of the VMM's start (conformance/faults.py): once a line of
    `stream` matches `match`, send `signal`, or run `shell` with the VMM stopped (SIGSTOP) so
    that nothing of it moves meanwhile (a pool drained between its mmap and its first touch)."""
    for t in triggers:
        lines = err if t.get("stream", "stderr") == "stderr" else out
        # Polled often: the stage a signal is aimed at may last only milliseconds.
        if not _await_line(proc, lines, re.compile(t["match"]), 0.002):
            return
        if t.get("signal"):
            proc.send_signal(t["signal"])
            done.append({"match": t["match"], "signal": t["signal"]})
        if t.get("shell"):
            proc.send_signal(signal.SIGSTOP)
            p = subprocess.run(t["shell"], shell=True, capture_output=True, text=True)
            proc.send_signal(signal.SIGCONT)
            done.append({"match": t["match"], "rc": p.returncode, "output": p.stdout + p.stderr})


def _send(proc: subprocess.Popen, text: str) -> None:
    """A line typed into the guest's console at once (OSError when memvisor's stdin is closed)."""
    if proc.stdin is None or proc.stdin.closed:
        raise OSError("memvisor's stdin is not open")
    proc.stdin.write(text)
    proc.stdin.flush()


def _qmp_start(spec: dict) -> dict:
    """QEMU: the commands a configuration needs once it runs (a balloon target); the queries
    whose answers the checks read come after the steps (query_all)."""
    out: dict = {"start": []}
    try:
        with Qmp(spec["socket"]) as q:
            for name, args in spec.get("start", []):
                try:
                    out["start"].append({name: q.command(name, **args)})
                except QmpError as e:
                    out["start"].append({name: {"error": str(e)}})
    except (OSError, QmpError, ValueError) as e:
        out["error"] = f"QMP: {e}"
    return out


def _wait(done, deadline: float, idle_s: float | None, out: list[str]) -> str:
    """Poll until done() ("done"), the deadline ("deadline"), or no new console line for
    idle_s seconds ("silent")."""
    seen, last = len(out), time.monotonic()
    while not done():
        now = time.monotonic()
        if len(out) != seen:
            seen, last = len(out), now
        if now >= deadline:
            return "deadline"
        if idle_s and now - last >= idle_s:
            return "silent"
        time.sleep(0.1)
    return "done"


def _stop_group(proc: subprocess.Popen) -> str | None:
    """SIGTERM first: memvisor -v then reports where each vCPU was (registers, code at rip),
    which says where a hung guest hangs; SIGKILL the group if that does not end it. Returns
    the threads' stacks if even that fails."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    # The whole group, always: a member left alive would hold the output pipes open.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
        return None
    except subprocess.TimeoutExpired:
        return _stacks(proc.pid)


def _stacks(pid: int) -> str:
    """Where each thread of a stuck VMM waits (wchan, state, kernel stack), for the report."""
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        stat = read_proc(pid, f"task/{task.name}/stat").split()
        out.append(f"thread {task.name} state={stat[2] if len(stat) > 2 else '?'} "
                   f"wchan={read_proc(pid, f'task/{task.name}/wchan')}")
        out.append(read_proc(pid, f"task/{task.name}/stack"))
    return "\n".join(out)


def _file_facts(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        return {"exists": False}
    facts: dict = {"exists": True, "size": p.stat().st_size}
    if p.is_file():
        with p.open("rb") as f:
            facts["head_hex"] = f.read(4096).hex()
    else:
        facts["entries"] = sorted(os.listdir(p))
    return facts


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python3 -m memvisor.inhost CASES.json RESULTS.jsonl", file=sys.stderr)
        return 2
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

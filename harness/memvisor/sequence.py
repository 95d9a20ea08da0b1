"""Resize sequences: API calls to a running VMM, each followed by what the guest and the host show.

inhost.run_case calls run_steps once the guest's first report is out (its hold marker). A step:

    {"name": "grow", "call": ["PUT", "vm.resize-zone", {"id": "mem0", "desired_ram": N}],
     "wait": "^SUMMARY:", "timeout": 60}

`call` goes to the case's `api_socket`; a step may instead (or as well) `type` a line into the
guest's serial console (the Linux guest's /init takes commands there); `wait` is a regex the guest must print after the call
(None: the request is meant to change nothing, and `settle` seconds are given to any change to
show anyway; with `wait_from: "previous"` the match may be a line that came since the previous
step began); with `quiet`, the console must then stay silent that many seconds. Then vm.info is asked and the host sampled: smaps of the VMM, the huge page
counters, and the size and allocated bytes of each of the case's `files`. Judging is left to the caller (conformance/).
Fault injection (conformance/faults.py): `shell` runs a command before the call, `signal` is
sent to the VMM right after it, `load` runs apiload.api_load (many clients at once) before it.

Timing (bench/resize.py): `seconds` is the whole step, quiet and settle included. When the caller
passes the arrival time of each console line (`times`, parallel to `out`), `match_seconds` is
from the start of the call to the arrival of the matching line, and `call_seconds` the HTTP
call itself. A step with `sample` (names under /proc/PID, e.g. ["status"]) has them read just
before the call (`sample_before`) and as soon as the match is seen (`sample_at_match`): what the
host held when the guest reported, before any quiet period.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable

from .api import ApiClient
from .apiload import api_load
from .hoststate import hugepage_counters, read_proc
from .qmp import QmpError
from .qmpcontrol import QmpControl


def file_usage(path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError:
        return {"exists": False}
    return {"exists": True, "size": st.st_size, "allocated": st.st_blocks * 512}


def _sample(pid: int, names: list[str]) -> dict[str, str]:
    return {n: read_proc(pid, n) for n in names}


def run_steps(case: dict, pid: int, out: list[str], alive,
              times: list[float] | None = None,
              type_text: Callable[[str], None] | None = None) -> list[dict]:
    """The steps through the case's API socket, or under QEMU (`qmp_control`) through QMP."""
    if case.get("qmp_control"):
        control = QmpControl(case["qmp_control"])
        try:
            if not control.wait_ready(10.0, alive):
                return [{"name": "api", "error": f"{case['qmp_control']['socket']}: QMP never "
                         "answered"}]
            return _run(case, control, pid, out, alive, times, type_text)
        finally:
            control.close()
    client = ApiClient(case["api_socket"])
    if not client.wait_ready(10.0, alive):
        return [{"name": "api", "error": f"{case['api_socket']}: the API never answered"}]
    return _run(case, client, pid, out, alive, times, type_text)


def _run(case: dict, client: ApiClient | QmpControl, pid: int, out: list[str], alive,
         times: list[float] | None, type_text: Callable[[str], None] | None) -> list[dict]:
    results: list[dict] = []
    before = read_proc(pid, "smaps")
    begun = 0
    for step in case["steps"]:
        r: dict = {"name": step["name"]}
        if not results:
            r["smaps_before"] = before      # the baseline of the resident-memory checks
        sample = step.get("sample") or []
        if sample:
            r["sample_before"] = _sample(pid, sample)
        if step.get("shell"):       # fault injection (conformance/faults.py): a pool drained
            p = subprocess.run(step["shell"], shell=True, capture_output=True, text=True)
            r["shell"] = {"rc": p.returncode, "output": p.stdout + p.stderr}
        if step.get("load"):
            r["load"] = api_load(case["api_socket"], step["load"])
        start, seen = time.monotonic(), len(out)
        if step.get("wait_from") == "previous":
            seen = begun
        begun = len(out)
        call = step.get("call")
        if call:
            try:
                r["status"], r["body"] = client.call(call[0], call[1], call[2] if len(call) > 2
                                                     else None)
            except OSError as e:
                r["error"] = f"{call[0]} {call[1]}: {e}"
            if isinstance(client, QmpControl):
                r["qmp_sent"] = client.last_sent
            r["call_seconds"] = round(time.monotonic() - start, 6)
            if step.get("signal"):      # a stop signal while the change is under way
                os.kill(pid, step["signal"])
        if step.get("type"):
            try:
                if type_text is None:
                    raise OSError("the guest's console takes no input here")
                type_text(step["type"])
            except OSError as e:
                r["error"] = f"typing {step['type']!r}: {e}"
        wait = re.compile(step["wait"]) if step.get("wait") else None
        deadline = start + float(step.get("timeout", 60))
        r["matched"] = False
        while wait and time.monotonic() < deadline and alive():
            hit = next((i for i in range(seen, len(out)) if wait.search(out[i])), None)
            if hit is not None:
                r["matched"] = True
                # The reader's arrival time of that line, else (no times) this poll's.
                at = times[hit] if times is not None and hit < len(times) else time.monotonic()
                r["match_seconds"] = round(at - start, 6)
                if sample:
                    r["sample_at_match"] = _sample(pid, sample)
                break
            time.sleep(0.02)
        # `quiet`: a guest that may report in several rounds (Linux onlines memory block by
        # block) is read once its console stayed silent that long.
        last, last_t = len(out), time.monotonic()
        while r["matched"] and step.get("quiet") and time.monotonic() < deadline and alive():
            if len(out) != last:
                last, last_t = len(out), time.monotonic()
            elif time.monotonic() - last_t >= float(step["quiet"]):
                break
            time.sleep(0.05)
        if not wait:
            time.sleep(float(step.get("settle", 0.5)))
        r["seconds"] = round(time.monotonic() - start, 3)
        try:
            r["info_status"], r["info"] = client.call("GET", "vm.info")
        except (OSError, QmpError) as e:
            r["info_status"], r["info"] = None, str(e)
        r["lines"] = out[seen:]
        r["smaps"] = read_proc(pid, "smaps")
        r["hp"] = hugepage_counters()
        r["files"] = {p: file_usage(p) for p in case.get("files", [])}
        results.append(r)
        if r.get("error") or (wait and not r["matched"]) or not alive():
            break
    return results

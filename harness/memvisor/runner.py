"""The one runner of batches of VMM cases, for conformance and bench: natively or in test hosts.

    run_cases(cases, venue, on_result=..., log=...) -> one result per case, in order

A case is a dict for harness/memvisor/inhost.run_case (name, argv, timeout, ...). Natively the
cases run here one by one. In the test host, one ci/testhost boot runs them all, and this side
watches it: the in-host runner prints `[i/n] NAME: started` and, once the result is on disk,
`[i/n] NAME: rc=...`. The deadline of the case under way (its timeout + MARGIN_S; BOOT_S for
the boot itself) is enforced from here, and every FREEZE_CHECK_S the test host's CPUs are looked
at through its QEMU monitor (frozen_cpus). When the deadline passes or a CPU is frozen, the test
host is stopped and a fresh one goes on: the case under way is run once more there (the venue
failed, not the case; what happened stays in its result's `lost_testhosts`), and a second loss
gives it a result with `lost` (why, and the tail of the test host's console). A test host that
fails twice in a row without finishing a case ends the run: what is left is `lost` with the
reason. Every result carries `venue`.

on_result(index, result) is called as each result arrives, so that callers stream their own
output to disk; nothing waits for the last case.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from .driver import BUILD, TOP
from .inhost import run_case

TESTHOST = TOP / "ci" / "testhost"
PYTHON = "/usr/bin/python3"
BOOT_S = 240          # boot + module load + 9p mount: ~15 s idle, ~40 s with the other core busy
MARGIN_S = 60         # beyond a case's own timeout (inhost kills the VMM at its timeout)


def case_budget(case: dict) -> int:
    """A case's whole time: its timeout for each attempt it may take (inhost.run_case)."""
    return int(case.get("timeout", 120)) * int(case.get("attempts", 1))
MAX_FAILED_BOOTS = 2  # consecutive test hosts that finished no case
LOST_RETRIES = 1      # fresh test hosts for a case whose test host was lost under it
FREEZE_CHECK_S = 30   # between two looks at the test host's CPUs while a case is under way
FREEZE_READINGS, FREEZE_APART_S = 4, 3.0    # still_frozen: a freeze is seen this often

Result = dict[str, Any]
OnResult = Callable[[int, Result], None]
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.*?): (started|rc=.*)$")


@dataclass
class TesthostOptions:
    extra: tuple[str, ...] = ()        # more ci/testhost options (--nodes, ...)
    boot_s: int = BOOT_S
    margin_s: int = MARGIN_S


def run_cases(cases: list[dict], venue: str, on_result: OnResult | None = None,
              log: TextIO = sys.stderr, opts: TesthostOptions | None = None) -> list[Result]:
    """Every case run once where `venue` says ("native" or "testhost"); results in order."""
    results: list[Result | None] = [None] * len(cases)

    def deliver(i: int, r: Result) -> None:
        results[i] = r
        if on_result:
            on_result(i, r)

    if venue == "native":
        for i, case in enumerate(cases):
            r = run_case(case)
            r["venue"] = "native"
            deliver(i, r)
    elif venue == "testhost":
        _run_in_testhosts(cases, deliver, log, opts or TesthostOptions())
    else:
        raise ValueError(f"venue {venue!r}: native or testhost")
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def other_testhosts() -> list[int]:
    """PIDs of test hosts already running on this machine (anyone's): two at once on 2 shared
    cores make both too slow to time, or worse."""
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


def wait_for_other_testhosts(limit_s: float, log: TextIO = sys.stderr) -> None:
    deadline = time.monotonic() + limit_s
    busy = other_testhosts()
    if busy:
        print(f"runner: waiting for the test host(s) already running (pid {busy}) to finish",
              file=log, flush=True)
    while busy and time.monotonic() < deadline:
        time.sleep(5)
        busy = other_testhosts()
    if busy:
        print(f"runner: still running after {limit_s:.0f} s: going ahead", file=log, flush=True)


def lost_result(case: dict, why: str, venue: str = "testhost") -> Result:
    return {"name": case["name"], "argv": case["argv"], "rc": None, "stdout": "", "stderr": "",
            "seconds": 0.0, "timed_out": False, "setup_errors": [], "lost": why,
            "venue": venue}


def _run_in_testhosts(cases: list[dict], deliver: Callable[[int, Result], None], log: TextIO,
                      opts: TesthostOptions) -> None:
    todo = list(range(len(cases)))
    failed_boots = boot = 0
    lost_under: dict[int, list[str]] = {}     # case -> why each of its test hosts was lost

    def deliver_noting(i: int, r: Result) -> None:
        if i in lost_under:
            r["lost_testhosts"] = lost_under[i]
        deliver(i, r)

    while todo:
        boot += 1
        done, stalled_at, why = _one_testhost(cases, todo, deliver_noting, log, opts, boot)
        todo = [i for i in todo if i not in done]
        if stalled_at is not None:
            lost_under.setdefault(stalled_at, []).append(why)
            if len(lost_under[stalled_at]) > LOST_RETRIES:
                # Lost again: failed, with what was seen each time.
                deliver_noting(stalled_at, lost_result(cases[stalled_at], why))
                todo.remove(stalled_at)
            else:
                print(f"runner: {cases[stalled_at]['name']} runs again in the next test host",
                      file=log, flush=True)
        failed_boots = 0 if done or stalled_at is not None else failed_boots + 1
        if todo and failed_boots >= MAX_FAILED_BOOTS:
            print(f"runner: {failed_boots} test hosts in a row finished no case; giving up on "
                  f"the {len(todo)} remaining", file=log, flush=True)
            for i in todo:
                deliver_noting(i, lost_result(cases[i], f"not run: {why}"))
            return
        if todo:
            print(f"runner: a fresh test host for the {len(todo)} remaining cases",
                  file=log, flush=True)


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


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to ci/testhost (its trap stops QEMU and removes its control directory), then
    SIGKILL to whatever of the tree is left."""
    tree = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    for pid in [proc.pid, *tree]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def monitor_command(path: Path, command: str, timeout: float = 10) -> str:
    """One HMP command on ci/testhost's --monitor socket; its output, or why there is none."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            buf = b""
            s.sendall(command.encode() + b"\n")
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                buf += chunk
                # HMP prints "(qemu) " again once the command's output is complete.
                if buf.count(b"(qemu) ") >= 2:
                    break
            text = buf.decode(errors="replace").replace("\r", "")
            between = text.split("(qemu) ", 1)[-1].rsplit("(qemu) ", 1)[0]
            # Its first line is HMP's echo of the command, drawn with terminal escapes.
            return between.split("\n", 1)[1].strip() if "\n" in between else ""
    except OSError as e:
        return f"(monitor: {e})"


def stall_diagnosis(monitor: Path, samples: int = 3) -> str:
    """Where the test host's vCPUs are, sampled a second apart, with the bytes at each RIP.
    The signature of the QEMU 7.2 MTTCG bug (ci/testhost, --tcg-thread) is RIPs cycling through
    the int3 handler and a kernel text address whose memory is no longer 0xcc; with nokaslr
    they resolve against /proc/kallsyms of any boot of the test host's kernel."""
    lines, rips = [], []
    for i in range(samples):
        regs = monitor_command(monitor, "info registers -a")
        found = re.findall(r"RIP=([0-9a-f]+)", regs)
        if not found:
            return f"vCPU state: {regs[:300]}"
        lines.append(f"vCPU RIPs, sample {i + 1}: {' '.join(found)}")
        rips += [r for r in found if r not in rips]
        if i + 1 < samples:
            time.sleep(1)
    for rip in rips[:8]:
        lines.append(f"x/12xb {rip}: {monitor_command(monitor, f'x/12xb 0x{rip}')}")
    return "\n".join(lines)


def frozen_cpus(monitor: Path) -> list[str]:
    """The test host's CPUs halted with interrupts enabled while their local APIC holds a
    pending interrupt above the processor priority, one line each. A CPU in that state takes
    the interrupt at once; QEMU's TCG (7.2 and 10.0) sometimes leaves one there for good, after
    which nothing scheduled on that CPU runs again (issue 10 note: an NMI does not wake it either,
    so its global interrupt flag is left clear). Seen by the caller twice, seconds apart."""
    return halted_with_pending(monitor_command(monitor, "info registers -a"),
                               lambda cpu: monitor_command(monitor, f"info lapic {cpu}"))


def still_frozen(read: Callable[[], list[str]],
                 sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """What frozen_cpus (`read`) shows the same in FREEZE_READINGS readings FREEZE_APART_S
    apart: a CPU halted at one RIP with the same interrupt pending every time. One reading is
    not enough: the monitor holds QEMU's big lock while it reads, and an idle CPU woken by its
    timer cannot take the interrupt meanwhile, so an idle CPU can look frozen once or twice
    (a make conformance-compare run killed a test host whose CPUs' RIPs were moving)."""
    seen = set(read())
    for _ in range(FREEZE_READINGS - 1):
        if not seen:
            return []
        sleep(FREEZE_APART_S)
        seen &= set(read())
    return sorted(seen)


def halted_with_pending(regs: str, lapic: Callable[[str], str]) -> list[str]:
    """frozen_cpus' reading of `info registers -a` and of `info lapic N` (lapic(N))."""
    out = []
    for cpu, block in re.findall(r"CPU#(\d+)\n(.*?)(?=CPU#\d+\n|\Z)", regs, re.S):
        m = re.search(r"RIP=([0-9a-f]+) RFL=([0-9a-f]+) .*?II=(\d) .*?HLT=(\d)", block)
        if not m or m.group(4) != "1" or m.group(3) != "0" or not int(m.group(2), 16) & 0x200:
            continue
        apic = lapic(cpu)      # `info lapic` takes an APIC id: ci/testhost's are the indices
        irr = re.search(r"^IRR\s+(.*)$", apic, re.M)
        ppr = re.search(r"PPR 0x([0-9a-f]+)", apic)
        if not irr or not ppr:
            continue
        vectors = [int(v) for v in re.findall(r"\d+", irr.group(1))]
        if any(v >> 4 > int(ppr.group(1), 16) >> 4 for v in vectors):
            out.append(f"CPU {cpu} halted at {m.group(1)} with IF=1, IRR {vectors}, "
                       f"PPR 0x{ppr.group(1)}")
    return out


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console)"


def _one_testhost(cases: list[dict], todo: list[int], deliver: Callable[[int, Result], None],
                  log: TextIO, opts: TesthostOptions,
                  boot: int) -> tuple[set[int], int | None, str]:
    """One ci/testhost boot over the cases `todo`. Returns the indices delivered, the index of
    the case under way if the test host had to be stopped (else None), and why it ended."""
    batch = [cases[i] for i in todo]
    total = opts.boot_s + sum(case_budget(c) + opts.margin_s for c in batch)
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="batch.") as d:
        cases_file, stream = Path(d) / "cases.json", Path(d) / "results.jsonl"
        console = Path(d) / "console"
        # A unix socket path has at most 107 bytes; the work tree may be deep.
        monitor = Path(tempfile.mkdtemp(prefix="mv-mon.")) / "sock"
        cases_file.write_text(json.dumps(batch))
        stream.touch()
        env = dict(os.environ, PYTHONPATH=f"{TOP / 'harness'}:{TOP}")
        cmd = [str(TESTHOST), "--force", "--timeout", str(total), "--console", str(console),
               "--monitor", str(monitor), *opts.extra, "--",
               PYTHON, "-m", "memvisor.inhost", str(cases_file), str(stream)]
        print(f"runner: test host {boot}: {len(batch)} cases", file=log, flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, cwd=TOP, errors="replace")
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)
        threading.Thread(target=read, daemon=True).start()

        done: set[int] = set()
        read_upto = 0
        under_way: int | None = None          # position in batch
        deadline = time.monotonic() + opts.boot_s
        tail: list[str] = []
        stalled = False
        next_look = time.monotonic() + opts.boot_s

        def collect() -> None:
            nonlocal read_upto
            with stream.open() as f:
                f.seek(read_upto)
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break
                    read_upto = f.tell()
                    r = json.loads(line)
                    pos = len(done)
                    r.update(venue="testhost", testhost_boot=boot)
                    deliver(todo[pos], r)
                    done.add(todo[pos])

        while True:
            try:
                line = lines.get(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                tail = (tail + [line.rstrip("\n")])[-40:]
                m = PROGRESS.match(line.rstrip("\n"))
                if m and m.group(4) == "started":
                    under_way = int(m.group(1)) - 1
                    deadline = time.monotonic() + case_budget(batch[under_way]) + opts.margin_s
                elif m:
                    collect()
                    under_way = None
                    deadline = time.monotonic() + opts.margin_s   # until the next start
                else:
                    print(f"  testhost: {line.rstrip()}", file=log, flush=True)
            if time.monotonic() > deadline and proc.poll() is None:
                stalled = True
                cpu_state = "its deadline passed.\n" + stall_diagnosis(monitor)
                _stop(proc)
                break
            if time.monotonic() > next_look and proc.poll() is None:
                next_look = time.monotonic() + FREEZE_CHECK_S
                frozen = still_frozen(lambda: frozen_cpus(monitor))
                if frozen:
                    stalled = True
                    cpu_state = (f"a frozen test-host CPU (seen {FREEZE_READINGS} times, "
                                 f"{FREEZE_APART_S} s apart): " + "; ".join(frozen) + "\n"
                                 + stall_diagnosis(monitor))
                    _stop(proc)
                    break
        rc = proc.wait()
        collect()
        monitor.unlink(missing_ok=True)
        monitor.parent.rmdir()
        name = batch[under_way]["name"] if under_way is not None else "(boot)"
        if stalled:
            why = (f"the test host stopped making progress during {name} and was killed.\n"
                   f"{cpu_state}\n--- console:\n{_tail(console)}")
        else:
            why = (f"ci/testhost exited with status {rc} during {name}:\n"
                   + "\n".join(tail[-15:]) + f"\n--- console:\n{_tail(console)}")
        if len(done) == len(batch):
            return done, None, ""
        print(f"runner: {why}", file=log, flush=True)
        stuck = todo[under_way] if under_way is not None and todo[under_way] not in done else None
        return done, stuck, why

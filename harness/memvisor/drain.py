"""Drain a hugetlb pool: another process takes every free huge page and holds them (fault
injection, conformance/faults.py).

    python3 -m memvisor.drain start STATEFILE [PAGE_KB]    # returns once drained, holder left
    python3 -m memvisor.drain stop STATEFILE               # the holder ends, its pages go back

The holder maps one huge page at a time (MAP_HUGETLB, reserved at mmap) and touches it, until
the kernel refuses; then it writes "PID PAGES" to STATEFILE and sleeps until stopped. PAGES is
what it got: every free page not reserved by someone else.
"""
from __future__ import annotations

import mmap
import os
import signal
import sys
import time
from pathlib import Path

MAP_HUGETLB = 0x40000
MAP_HUGE_SHIFT = 26


def _hold(state: Path, page: int) -> None:
    held = []
    flags = mmap.MAP_PRIVATE | MAP_HUGETLB | ((page.bit_length() - 1) << MAP_HUGE_SHIFT)
    while True:
        try:
            m = mmap.mmap(-1, page, flags=flags)
        except OSError:
            break
        m[0] = 1
        held.append(m)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()} {len(held)}\n")
    tmp.rename(state)
    while True:
        time.sleep(3600)


def start(state: Path, page_kb: int) -> int:
    state.unlink(missing_ok=True)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            _hold(state, page_kb * 1024)
        finally:
            os._exit(1)
    deadline = time.monotonic() + 60
    while not state.exists():
        if time.monotonic() > deadline or os.waitpid(pid, os.WNOHANG)[0]:
            print(f"drain: the holder ended or took too long", file=sys.stderr)
            return 1
        time.sleep(0.01)
    print(state.read_text().strip())
    return 0


def stop(state: Path) -> int:
    try:
        pid = int(state.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError) as e:
        print(f"drain: {state}: {e}", file=sys.stderr)
        return 1
    # The pages are back in the pool only once the holder is gone.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "start":
        return start(Path(argv[2]), int(argv[3]) if len(argv) > 3 else 2048)
    if len(argv) == 3 and argv[1] == "stop":
        return stop(Path(argv[2]))
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

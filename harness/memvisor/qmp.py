"""A small QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.txt), standard library only.

    with Qmp(path) as q:                       # connects, reads the greeting, qmp_capabilities
        q.command("query-memory-devices")      # the "return" value; QmpError on "error"
        q.command("qom-set", path="/machine/peripheral/vmem0", property="requested-size",
                  value=64 << 20)

Asynchronous events that arrive before a reply are kept in `events`, never mistaken for it.
"""
from __future__ import annotations

import json
import socket
import time
from typing import Any


class QmpError(RuntimeError):
    """QEMU answered a command with an error: its class and description."""


class Qmp:
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path, self.timeout = path, timeout
        self.events: list[dict[str, Any]] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def __enter__(self) -> "Qmp":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, wait_s: float = 5.0) -> None:
        """Connect (QEMU creates the socket as it starts: retry until wait_s), then greet."""
        deadline = time.monotonic() + wait_s
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            try:
                s.connect(self.path)
                break
            except OSError:
                s.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self._sock = s
        greeting = self._read()
        if "QMP" not in greeting:
            raise QmpError(f"no QMP greeting: {greeting}")
        self.command("qmp_capabilities")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _read(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise QmpError("QMP connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, name: str, **arguments: Any) -> Any:
        assert self._sock is not None, "not connected"
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QmpError(f"{name}: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")


def query_all(path: str, commands: list[str]) -> dict[str, Any]:
    """Each query's answer, or {"error": why} in its place: for the record of a held guest."""
    out: dict[str, Any] = {}
    try:
        with Qmp(path) as q:
            for c in commands:
                try:
                    out[c] = q.command(c)
                except QmpError as e:
                    out[c] = {"error": str(e)}
    except (OSError, QmpError, ValueError) as e:
        out["error"] = f"QMP at {path}: {e}"
    return out

"""A client of Cloud Hypervisor's REST API over its unix socket (memvisor serves the same API).

    status, body = ApiClient(path).call("PUT", "vm.resize", {"desired_ram": 1 << 30})

Standard library only: the harness runs it natively and inside the test host alike.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

PREFIX = "/api/v1/"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.socket_path)
        self.sock = s


class ApiClient:
    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def call(self, method: str, endpoint: str, body: dict | str | None = None) -> tuple[int, str]:
        """(HTTP status, body text). A str body is sent as is (to send malformed JSON)."""
        conn = _UnixConnection(self.path, self.timeout)
        try:
            data = body if isinstance(body, str) or body is None else json.dumps(body)
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, PREFIX + endpoint, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def info(self) -> dict:
        status, body = self.call("GET", "vm.info")
        if status != 200:
            raise RuntimeError(f"vm.info: HTTP {status}: {body.strip()}")
        return json.loads(body)

    def wait_ready(self, limit_s: float, alive=lambda: True) -> bool:
        """True once vmm.ping answers; False at the limit or when alive() turns False."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and alive():
            try:
                if self.call("GET", "vmm.ping")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

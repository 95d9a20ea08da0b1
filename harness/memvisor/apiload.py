"""Many API clients at once against a running VMM (conformance/faults.py, the API under load).

    api_load(socket_path, {"threads": 32, "requests": 12, "seed": 1, "zones": [["mem0", lo, hi]],
                           "timeout": 20})

Each thread sends `requests` requests, a deterministic mix (from `seed` and its index) of
vm.info, vm.resize-zone and vm.resize to sizes inside each zone's [lo, hi] (multiples of 2 MiB),
and bad requests: malformed JSON, an unknown zone, an unknown path, a wrong method. Every request
gets `timeout` seconds; one that gets no answer in time is a deadlock or a starved client.
Returns every request with its kind, HTTP status (None: no answer) and seconds.
"""
from __future__ import annotations

import errno
import random
import threading
import time

from .api import ApiClient

MiB = 1 << 20
KINDS = ("info", "resize-zone", "resize", "malformed", "unknown-zone", "unknown-path",
         "wrong-method")


def request_for(kind: str, rnd: random.Random, zones: list) -> tuple[str, str, dict | str | None]:
    zid, lo, hi = zones[rnd.randrange(len(zones))]
    size = lo + rnd.randrange((hi - lo) // (2 * MiB) + 1) * 2 * MiB
    return {
        "info": ("GET", "vm.info", None),
        "resize-zone": ("PUT", "vm.resize-zone", {"id": zid, "desired_ram": size}),
        "resize": ("PUT", "vm.resize", {"desired_ram": sum(z[1] for z in zones) + size - lo}),
        "malformed": ("PUT", "vm.resize-zone", '{"id": "mem0", "desired_ram": '),
        "unknown-zone": ("PUT", "vm.resize-zone", {"id": "nosuch", "desired_ram": size}),
        "unknown-path": ("GET", "vm.nosuch", None),
        "wrong-method": ("DELETE", "vm.info", None),
    }[kind]


def _client(path: str, spec: dict, index: int, out: list[dict]) -> None:
    rnd = random.Random(spec.get("seed", 1) * 1000 + index)
    client = ApiClient(path, timeout=float(spec.get("timeout", 20)))
    for _ in range(int(spec.get("requests", 12))):
        kind = KINDS[rnd.randrange(len(KINDS))]
        method, endpoint, body = request_for(kind, rnd, spec["zones"])
        start = time.monotonic()
        r: dict = {"kind": kind, "thread": index}
        try:
            r["status"], text = client.call(method, endpoint, body)
            r["one_line"] = "\n" not in text.strip()
        except OSError as e:
            # A full backlog refuses a unix-socket connect at once (README: more clients wait
            # in the backlog or are refused); anything else is a request left unanswered.
            r["status"], r["error"] = None, str(e)
            r["refused"] = e.errno in (errno.EAGAIN, errno.ECONNREFUSED)
        r["seconds"] = round(time.monotonic() - start, 4)
        out.append(r)


def api_load(path: str, spec: dict) -> dict:
    results: list[dict] = []
    threads = [threading.Thread(target=_client, args=(path, spec, i, results))
               for i in range(int(spec.get("threads", 32)))]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"requests": results, "seconds": round(time.monotonic() - start, 3)}

"""Cloud Hypervisor's resize calls as a QEMU user makes them over QMP, for the same steps.

A resize sequence (sequence.py) is written in CH's REST terms. Under QEMU the same step list
goes through QmpControl, which has ApiClient's `call` and `wait_ready` and sends what the QEMU
documentation gives for each intent:

    PUT vm.resize {"desired_ram": N}, virtio-mem   qom-set <mem0's virtio-mem> requested-size
                                                   = N - mem0's boot RAM
    PUT vm.resize {"desired_ram": N}, ACPI         grow: object-add <backend> + device_add
                                                   pc-dimm of N - current; shrink: device_del
                                                   of the newest DIMMs that add up to it
    PUT vm.resize {"desired_balloon": N}           balloon value = current RAM - N
    PUT vm.resize-zone {"id": Z, "desired_ram": N} qom-set <Z's virtio-mem> requested-size
    GET vm.info                                    memory_actual_size: query-balloon's actual
                                                   (RAM less the balloon), else base + plugged
                                                   memory of query-memory-size-summary

"Current RAM" is QEMU's own account (query-memory-size-summary), read at the call. QEMU's
answer is the status: 204 when every command returned, 400 with QEMU's error otherwise. A
request no QMP command can make (a shrink no set of DIMMs adds up to, a body that is not CH's
JSON) is 400 with the reason, and nothing is sent. `last_sent` keeps the commands of the last
call for the record.
"""
from __future__ import annotations

import json
import time
from typing import Any

from .qmp import Qmp, QmpError

OK, REFUSED = 204, 400
PERIPHERAL = "/machine/peripheral"


class NoTranslation(ValueError):
    """The request has no QMP spelling."""


class QmpControl:
    """spec: {"socket", "virtio_mem": {zone: device id}, "boot_sizes": {zone: bytes},
    "dimm_backend": object-add properties or None, "balloon": bool}."""

    def __init__(self, spec: dict, timeout: float = 30.0) -> None:
        self.spec = spec
        self.qmp = Qmp(spec["socket"], timeout)
        self.dimms: list[tuple[str, int]] = []      # (id, size) of the DIMMs added, in order
        self._serial = 0       # DIMM ids are never reused: QEMU keeps a removed DIMM's backend
        self.last_sent: list[list[Any]] = []

    def wait_ready(self, limit_s: float, alive=lambda: True) -> bool:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and alive():
            try:
                self.qmp.connect(wait_s=1.0)
                return True
            except (OSError, QmpError, ValueError):
                time.sleep(0.1)
        return False

    def close(self) -> None:
        self.qmp.close()

    def _send(self, name: str, **args: Any) -> Any:
        self.last_sent.append([name, args])
        return self.qmp.command(name, **args)

    def ram(self) -> int:
        """QEMU's guest RAM now: boot memory plus what is plugged (DIMMs, virtio-mem)."""
        s = self.qmp.command("query-memory-size-summary")
        return int(s.get("base-memory", 0)) + int(s.get("plugged-memory", 0))

    def info(self) -> dict:
        if self.spec.get("balloon"):
            return {"memory_actual_size": int(self.qmp.command("query-balloon")["actual"])}
        return {"memory_actual_size": self.ram()}

    def call(self, method: str, endpoint: str, body: dict | str | None = None) -> tuple[int, str]:
        self.last_sent = []
        try:
            if (method, endpoint) == ("GET", "vm.info"):
                return 200, json.dumps(self.info())
            commands = self.translate(method, endpoint, body)
            for name, args in commands:
                self._send(name, **args)
            self._track_dimms(commands)
            return OK, ""
        except NoTranslation as e:
            return REFUSED, f"no QMP translation: {e}"
        except QmpError as e:
            return REFUSED, str(e)

    def translate(self, method: str, endpoint: str,
                  body: dict | str | None) -> list[tuple[str, dict]]:
        """The QMP commands for one CH call (QMP queries it needs are made here)."""
        if method != "PUT" or endpoint not in ("vm.resize", "vm.resize-zone") or \
                not isinstance(body, dict) or \
                not all(isinstance(v, int) for k, v in body.items() if k != "id"):
            raise NoTranslation(f"{method} {endpoint} {body!r} is not a CH resize call")
        if endpoint == "vm.resize-zone":
            return [self._requested_size(str(body.get("id")), body.get("desired_ram", 0))]
        if "desired_balloon" in body:
            return [("balloon", {"value": self.ram() - body["desired_balloon"]})]
        if "desired_ram" not in body:
            raise NoTranslation(f"vm.resize {body!r}: neither desired_ram nor desired_balloon")
        if self.spec.get("virtio_mem"):
            return [self._requested_size("mem0", body["desired_ram"])]
        if self.spec.get("dimm_backend") is not None:
            return self._dimms(body["desired_ram"] - self.ram())
        raise NoTranslation("this VM has neither virtio-mem nor ACPI hotplug slots")

    def _requested_size(self, zone: str, desired: int) -> tuple[str, dict]:
        # An unknown zone goes to QEMU as it is: QEMU's own "not found" is the answer.
        dev = self.spec.get("virtio_mem", {}).get(zone, f"vmem-{zone}")
        return ("qom-set", {"path": f"{PERIPHERAL}/{dev}", "property": "requested-size",
                            "value": desired - self.spec.get("boot_sizes", {}).get(zone, 0)})

    def _dimms(self, delta: int) -> list[tuple[str, dict]]:
        if delta > 0:
            self._serial += 1
            did = f"dimm{self._serial}"
            props = dict(self.spec["dimm_backend"])
            return [("object-add", {**props, "id": f"{did}-mem", "size": delta}),
                    ("device_add", {"driver": "pc-dimm", "id": did, "memdev": f"{did}-mem"})]
        out: list[tuple[str, dict]] = []
        left = -delta
        for did, size in reversed(self.dimms):
            if left <= 0:
                break
            if size > left:
                break
            out.append(("device_del", {"id": did}))
            left -= size
        if left:
            raise NoTranslation(f"no set of the newest DIMMs adds up to {-delta} bytes")
        return out

    def _track_dimms(self, sent: list[tuple[str, dict]]) -> None:
        """The DIMMs after a call whose every command QEMU took (a failed one changes none)."""
        sizes = {args["id"]: args["size"] for name, args in sent if name == "object-add"}
        for name, args in sent:
            if name == "device_add":
                self.dimms.append((args["id"], sizes[args["memdev"]]))
            elif name == "device_del":
                self.dimms = [d for d in self.dimms if d[0] != args["id"]]

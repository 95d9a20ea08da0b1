"""Fault injection with real faults: the host fails under memvisor, memvisor refuses cleanly.

  hugetlb    another process drains the pool (harness/memvisor/drain.py): before memvisor
             starts (a one-line refusal), or between its mmap and the guest's first touch
             (memvisor paused at its `zone mem0` line, the pool drained, memvisor resumed): the
             reservation made at mmap keeps the zone's pages, the guest fills its RAM, no
             SIGBUS; a virtio-mem plug on the drained pool is NACKed, and plugged once the
             pool is back.
  tmpfs      a file zone on a 64 MiB tmpfs: bigger than the space, a one-line ENOSPC naming the
             zone and nothing left in the file system (prefault on or off, a file or a
             directory); fitting, a plug beyond the space is NACKed, a plug that fits works.
  signal     SIGTERM and SIGINT while a zone is mapped, while a 1 GiB zone is prefaulted (both at
             memvisor's -v `zone` line of the zone before), while the guest runs, and right
             after a resize request: status 128 + N; before the guest ran the created file is
             gone and the grown one is back to its size and data; after, both keep the guest's
             memory (README: exit statuses); the API socket is removed.
  load       32 clients at once: vm.info, vm.resize-zone, vm.resize and bad requests against
             the resize guest: every request answered in time with a one-line error where it
             fails, and afterwards the guest, vm.info and the host's RSS agree on what is plugged.
The stages are driven by memvisor's own lines (inhost.py `triggers`) and the API, not by sleeps.
"""
from __future__ import annotations

import json
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

from memvisor.driver import VmConfig

from .checks import zone_lines
from .hostile import SANITIZER
from .resize import GUEST, RESIDENT_SLACK, _resident, socket_path

MiB = 1 << 20
HARNESS = Path(__file__).resolve().parents[1] / "harness"
DRAIN_STATE = "/tmp/memvisor-faults-drain"
DRAIN = f"PYTHONPATH={HARNESS} /usr/bin/python3 -m memvisor.drain"
TMPFS = "/tmp/memvisor-faults-tmpfs"
NEW, GROWN = "/tmp/memvisor-faults-new.img", "/tmp/memvisor-faults-grown.img"
GROWN_DATA = bytes(range(256)) * 32          # the user's 8 KiB the file must keep
LOAD_BOUND_S = 10.0                          # an API answer later than this is a stall
QUICK: tuple[str, ...] = ()    # make test keeps its ~20 quick cases; these run in the full matrix


@dataclass(frozen=True)
class FaultCase:
    name: str
    kind: str                       # "refused", "steps", "signal" or "load"
    memory: str | None
    zones: tuple[str, ...] = ()
    cmdline: str = ""
    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    triggers: tuple[dict, ...] = ()
    steps: tuple[dict, ...] = ()
    reason: tuple[str, ...] = ()    # refused: what the one line must contain
    stage: str = ""                 # signal: mapping, prefault, running or resize
    sig: int = 0
    api: bool = True
    extra: dict = field(default_factory=dict, hash=False)


def resize_zone(name: str, zid: str, size: int, **kw) -> dict:
    return {"name": name, "call": ["PUT", "vm.resize-zone", {"id": zid, "desired_ram": size}],
            "timeout": 30, **kw}


def _plug_line(plugged: int, answer: int) -> str:
    return rf"^resize seq=\d+ kind=virtio-mem dev=0 requested=0x[0-9a-f]+ plugged={plugged:#x} " \
           rf"answer={answer} verified_bad_pages=0"


_MOUNT = (f"umount {TMPFS} 2>/dev/null; rm -rf {TMPFS} && mkdir -p {TMPFS} && "
          f"mount -t tmpfs -o size=64M memvisor-faults {TMPFS}",)
_UMOUNT = (f"umount {TMPFS}; rmdir {TMPFS}",)
_HUGE = "id=mem0,size=32M,hugepages=on,hugepage_size=2M"
_VMEM = "size=0,hotplug_method=virtio-mem"


def _tmpfs_full(name: str, zone: str, path: str) -> FaultCase:
    return FaultCase(name, "refused", "size=0", (zone,), setup=_MOUNT, teardown=_UMOUNT,
                     files=(path,), reason=("zone 'mem0'", "No space left on device"))


def _signal_case(sig: int, stage: str) -> FaultCase:
    name = f"fault-{signal.Signals(sig).name.lower()}-{stage}"
    before = {"mapping": "mem0", "prefault": "mem1"}.get(stage)
    return FaultCase(
        name, "signal", _VMEM,
        (f"id=mem0,size=64M,file={NEW},shared=on,hotplug_size=128M",
         f"id=mem1,size=64M,file={GROWN},shared=on", "id=mem2,size=1G,prefault=on"),
        setup=(f"rm -f {NEW} && /usr/bin/python3 -c \"open('{GROWN}', 'wb')"
               f".write(bytes(range(256)) * 32)\"",),
        teardown=(f"rm -f {NEW} {GROWN}",), files=(NEW, GROWN, socket_path(name)),
        triggers=({"match": f"^memvisor: zone {before} ", "signal": sig},) if before else (),
        steps=(resize_zone("resize-then-signal", "mem0", 128 * MiB, signal=sig, settle=0.5),)
        if stage == "resize" else (),
        stage=stage, sig=sig)


CASES = (
    FaultCase("fault-hugetlb-drained-at-start", "refused", "size=0", (_HUGE,),
              setup=(f"{DRAIN} start {DRAIN_STATE}",), teardown=(f"{DRAIN} stop {DRAIN_STATE}",),
              reason=("zone 'mem0'", "huge pages"), api=False),
    FaultCase("fault-hugetlb-drained-after-map", "steps", _VMEM,
              (f"{_HUGE},hotplug_size=128M", "id=mem1,size=512M,prefault=on"), cmdline="fill=1",
              teardown=(f"{DRAIN} stop {DRAIN_STATE}",),
              triggers=({"match": "^memvisor: zone mem0 ", "shell": f"{DRAIN} start {DRAIN_STATE}"},),
              steps=(resize_zone("plug-on-drained-pool", "mem0", 64 * MiB,
                                 wait=_plug_line(0, 1), expect_actual=544 * MiB),
                     # The pool back, a new request (the guest retries only when asked).
                     resize_zone("pool-back", "mem0", 62 * MiB, shell=f"{DRAIN} stop {DRAIN_STATE}",
                                 wait=_plug_line(30 * MiB, 0), expect_actual=574 * MiB))),
    _tmpfs_full("fault-tmpfs-full", f"id=mem0,size=128M,file={TMPFS}/zone.img,shared=on",
                f"{TMPFS}/zone.img"),
    _tmpfs_full("fault-tmpfs-full-prefault", f"id=mem0,size=128M,file={TMPFS}/zone.img,"
                "prefault=on", f"{TMPFS}/zone.img"),
    _tmpfs_full("fault-tmpfs-full-dir", f"id=mem0,size=128M,file={TMPFS},shared=on", TMPFS),
    FaultCase("fault-tmpfs-plug", "steps", _VMEM,
              (f"id=mem0,size=32M,file={TMPFS}/zone.img,shared=on,hotplug_size=128M",),
              cmdline="fill=1", setup=_MOUNT, teardown=_UMOUNT,
              steps=(resize_zone("plug-beyond-space", "mem0", 96 * MiB, wait=_plug_line(0, 1),
                                 expect_actual=32 * MiB),
                     resize_zone("plug-that-fits", "mem0", 48 * MiB,
                                 wait=_plug_line(16 * MiB, 0), expect_actual=48 * MiB))),
    *(_signal_case(sig, stage) for sig in (signal.SIGTERM, signal.SIGINT)
      for stage in ("mapping", "prefault", "running", "resize")),
    FaultCase("fault-api-load", "load", _VMEM,
              ("id=mem0,size=64M,hotplug_size=256M", "id=mem1,size=64M,hotplug_size=256M"),
              steps=({"name": "load", "load": {"threads": 32, "requests": 12, "seed": 13,
                                               "timeout": 30,
                                               "zones": [["mem0", 64 * MiB, 320 * MiB],
                                                         ["mem1", 64 * MiB, 320 * MiB]]},
                      "settle": 0.5},
                     resize_zone("final-mem0", "mem0", 192 * MiB, settle=0.2),
                     resize_zone("final-mem1", "mem1", 96 * MiB, settle=3.0)),
              extra={"final": {"mem0": 128 * MiB, "mem1": 32 * MiB}}),
)


def config(c: FaultCase) -> VmConfig:
    return VmConfig(memory=c.memory, zones=list(c.zones), kernel=GUEST, cmdline=c.cmdline,
                    api_socket=socket_path(c.name) if c.api else None)


def by_name(name: str) -> FaultCase:
    return next(c for c in CASES if c.name == name)


def inhost_extra(c: FaultCase) -> dict:
    """What run.inhost_case adds for a fault case."""
    return {"triggers": list(c.triggers),
            "stop_signal": int(c.sig) if c.stage == "running" else None}


# ---------------------------------------------------------------------------------------------
# Checks

def check_alive(result: dict, want_rc: int | None) -> list[str]:
    """No hang, no crash (SIGBUS above all), no sanitizer report, the status expected."""
    bad = []
    rc = result.get("rc")
    if result.get("timed_out"):
        bad.append("memvisor hung (the case's timeout): " + (result.get("stuck") or ""))
    elif rc is not None and rc < 0:
        bad.append(f"memvisor was killed by signal {-rc} ({signal.Signals(-rc).name})")
    elif want_rc is not None and rc != want_rc:
        bad.append(f"memvisor exited with status {rc}, expected {want_rc}")
    san = SANITIZER.search(result.get("stderr", ""))
    if san:
        bad.append(f"sanitizer report in memvisor's stderr: {san[0]}")
    return bad


def _gone(result: dict, path: str, what: str) -> list[str]:
    f = (result.get("files_after") or {}).get(path, {})
    if f.get("exists") and f.get("entries", []) != [] and "entries" in f:
        return [f"{path}: {what} holds {f['entries']} after memvisor ended"]
    if f.get("exists") and "entries" not in f:
        return [f"{path}: {what} still exists after memvisor ended"]
    return []


def check_refused(c: FaultCase, result: dict) -> list[str]:
    """Status 1, exactly one line naming the zone and the reason, no guest, nothing left."""
    bad = check_alive(result, 1)
    lines = [ln for ln in result.get("stderr", "").splitlines() if ln.strip()]
    if len(lines) != 1 or not lines[0].startswith("memvisor: "):
        bad.append(f"{len(lines)} lines on stderr, expected one 'memvisor: ...': {lines[:3]}")
    elif not all(w in lines[0] for w in c.reason):
        bad.append(f"the error {lines[0]!r} does not say {list(c.reason)}")
    if result.get("stdout", "").strip():
        bad.append("the guest ran: " + result["stdout"].strip().splitlines()[0])
    for p in c.files:
        bad += _gone(result, p, "the zone's file or directory")
    return bad


def _info_actual(step: dict) -> int | None:
    try:
        return json.loads(step["info"]).get("memory_actual_size")
    except (KeyError, TypeError, ValueError):
        return None


def check_steps(c: FaultCase, result: dict) -> list[str]:
    """The guest held, each step showed what it must (a NACK, then the plug), vm.info agrees,
    the huge pages taken are back in the pool at the end."""
    bad = check_alive(result, 128 + signal.SIGTERM)
    if result.get("rc") is None or result.get("timed_out"):
        return bad
    out = result.get("stdout", "")
    bad += [f"guest: {ln}" for ln in out.splitlines() if ln.startswith(("FAIL:", "error check="))]
    for t in result.get("triggered") or []:
        if t.get("rc"):
            bad.append(f"fault injection at /{t['match']}/ failed: {t.get('output', '').strip()}")
    if c.triggers and len(result.get("triggered") or []) != len(c.triggers):
        bad.append(f"{len(result.get('triggered') or [])} of {len(c.triggers)} faults injected")
    if "cmdline value=\"fill=1\"" in out and not re.search(r"^fill pages=[1-9]", out, re.M):
        bad.append("the guest did not fill its RAM")
    steps = result.get("steps") or []
    for p, r in zip(c.steps, steps):
        where = f"step {p['name']}"
        if r.get("error"):
            bad.append(f"{where}: {r['error']}")
            continue
        if "call" in p and r.get("status") != 204:
            bad.append(f"{where}: HTTP {r.get('status')} {r.get('body')!r}, expected 204")
        if (r.get("shell") or {}).get("rc"):
            bad.append(f"{where}: {p['shell']!r} failed: {r['shell']['output'].strip()}")
        if p.get("wait") and not r.get("matched"):
            bad.append(f"{where}: no guest line like /{p['wait']}/ within {p['timeout']} s")
        if "expect_actual" in p and _info_actual(r) != p["expect_actual"]:
            bad.append(f"{where}: vm.info memory_actual_size {_info_actual(r)}, expected "
                       f"{p['expect_actual']}")
    if len(steps) < len(c.steps):
        bad.append(f"only {len(steps)} of {len(c.steps)} steps ran")
    before, after = result.get("hp_before") or {}, result.get("hp_after") or {}
    bad += [f"huge pages {k}: {n} before, {after[k]} after the case" for k, n in before.items()
            if k.startswith("free_") and k in after and after[k] != n]
    return bad


def check_signal(c: FaultCase, result: dict) -> list[str]:
    """Status 128 + N; the zone files as README says for that stage; the socket removed."""
    bad = check_alive(result, 128 + c.sig)
    if result.get("rc") is None or result.get("timed_out"):
        return bad
    files = result.get("files_after") or {}
    new, grown = files.get(NEW, {}), files.get(GROWN, {})
    ran = "memvisor-resize" in result.get("stdout", "")
    if c.stage in ("mapping", "prefault"):
        if ran:
            bad.append(f"the guest ran: signal {c.sig} "
                       f"came after the start")
        if new.get("exists"):
            bad.append(f"{NEW}: the file memvisor created is left behind")
        if grown.get("size") != len(GROWN_DATA) or \
                grown.get("head_hex") != GROWN_DATA[:4096].hex():
            bad.append(f"{GROWN}: size {grown.get('size')} or data not restored (the user's "
                       f"{len(GROWN_DATA)} bytes)")
    else:
        if not ran:
            bad.append("the guest never ran: the stage was not reached")
        if new.get("size") != 192 * MiB:
            bad.append(f"{NEW}: {new} after the guest ran, expected kept at 192 MiB")
        if grown.get("size") != 64 * MiB:
            bad.append(f"{GROWN}: size {grown.get('size')} after the guest ran, expected kept "
                       f"at 64 MiB")
    sock = files.get(socket_path(c.name), {})
    if sock.get("exists"):
        bad.append(f"{socket_path(c.name)}: the API socket is left behind")
    warn = [ln for ln in result.get("stderr", "").splitlines() if "warning" in ln]
    bad += [f"stderr: {ln}" for ln in warn]
    return bad


# The statuses each kind of request may get under load: a resize may be refused (a size the
# zone cannot take at that moment), never fail inside memvisor.
LOAD_STATUS = {"info": {200}, "resize-zone": {204}, "resize": {204, 400},
               "malformed": {400}, "unknown-zone": {400, 404}, "unknown-path": {404},
               "wrong-method": {405}}


def check_load(c: FaultCase, result: dict) -> list[str]:
    bad = check_alive(result, 128 + signal.SIGTERM)
    steps = result.get("steps") or []
    if result.get("rc") is None or result.get("timed_out") or not steps:
        return bad + (["no step ran"] if not steps else [])
    reqs = (steps[0].get("load") or {}).get("requests", [])
    want = c.steps[0]["load"]["threads"] * c.steps[0]["load"]["requests"]
    if len(reqs) != want:
        bad.append(f"{len(reqs)} requests made of {want}")
    lost = [r for r in reqs if r.get("status") is None and not r.get("refused")]
    if lost:
        bad.append(f"{len(lost)} requests accepted and never answered (deadlock?): "
                   f"{lost[0].get('error')}")
    if not any(r.get("status") for r in reqs):
        bad.append("no request under load was answered")
    bad += [f"step {r['name']} after the load: {r['error']}" for r in steps[1:] if r.get("error")]
    slow = [r for r in reqs if r.get("status") and r.get("seconds", 0) > LOAD_BOUND_S]
    if slow:
        bad.append(f"{len(slow)} requests answered after more than {LOAD_BOUND_S} s "
                   f"(slowest {max(r['seconds'] for r in slow)} s)")
    odd = [r for r in reqs if r.get("status") is not None
           and r["status"] not in LOAD_STATUS[r["kind"]]]
    bad += [f"{r['kind']}: HTTP {r['status']}" for r in odd[:5]]
    if any(r.get("status", 0) and r["status"] >= 400 and not r.get("one_line") for r in reqs):
        bad.append("a refusal under load was not one line")
    final = c.extra["final"]
    out = result.get("stdout", "").splitlines()
    last = {}
    for m in map(re.compile(r"^resize .* dev=(\d+) requested=0x([0-9a-f]+) "
                            r"plugged=0x([0-9a-f]+)").match, out):
        if m:
            last[int(m[1])] = int(m[3], 16)
    for dev, (zid, n) in enumerate(sorted(final.items())):
        if last.get(dev) != n:
            bad.append(f"zone {zid}: the guest has {last.get(dev, 0):#x} plugged, expected {n:#x}")
    boot = 128 * MiB
    if _info_actual(steps[-1]) != boot + sum(last.values()):
        bad.append(f"vm.info memory_actual_size {_info_actual(steps[-1])} after the load, the "
                   f"guest has {boot + sum(last.values())}")
    zones = zone_lines(result.get("stderr", ""))
    for zid, n in final.items():
        if zid not in zones:
            continue
        host, size = zones[zid][1], zones[zid][2]
        res = _resident(steps[-1].get("smaps", ""), host + 64 * MiB, size - 64 * MiB)
        if res is not None and abs(res - n) > RESIDENT_SLACK:
            bad.append(f"zone {zid}: its virtio-mem region holds {res // MiB} MiB on the host, "
                       f"{n // MiB} MiB plugged")
    return bad


def check(c: FaultCase, result: dict) -> list[str]:
    return {"refused": check_refused, "steps": check_steps, "signal": check_signal,
            "load": check_load}[c.kind](c, result)

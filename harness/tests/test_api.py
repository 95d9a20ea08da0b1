"""The REST API of a real memvisor (native KVM), through curl --unix-socket (or Python's
http.client over AF_UNIX when curl is absent) and memvisor-remote: answers, the socket's mode,
4xx for bad requests with the VM answering afterwards, and the socket file gone at every end.

The guest is the probe with `hold`: it halts for good after its report, so the VM stays up
until the test ends it.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from memvisor.driver import BUILD
from memvisor.venue import kvm_error

MEMVISOR = Path(os.environ.get("MEMVISOR_BIN", BUILD / "memvisor"))
REMOTE = BUILD / "memvisor-remote"
PROBE = BUILD / "guests" / "probe.elf"
MiB = 1 << 20
BOOT_RAM = 128 * MiB
MEMORY = f"size={BOOT_RAM},hotplug_method=virtio-mem,hotplug_size=256M"
CURL = shutil.which("curl")


def wait_for(what: str, ready, proc: subprocess.Popen | None = None, log: Path | None = None,
             timeout: float = 30.0):
    """Poll ready() until it is true; fail naming `what` (and memvisor's output) otherwise."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = ready()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.02)
    out = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    pytest.fail(f"{what}: not seen (memvisor {'exited ' + str(proc.returncode) if proc and proc.poll() is not None else 'running'})\n{out}")


class Vm:
    """memvisor with --api-socket, its output in a file; the probe reported and holds."""

    def __init__(self, tmp: Path) -> None:
        self.sock = tmp / "api.sock"
        self.log = tmp / "memvisor.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(MEMVISOR), "--serial", "tty", "--memory", MEMORY, "--kernel", str(PROBE),
                 "--cmdline", "hold memtest=off", "--api-socket", f"path={self.sock}"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        wait_for("the API socket", self.sock.exists, self.proc, self.log)
        wait_for("the probe's report", lambda: "SUMMARY:" in self.log.read_text(errors="replace"),
                 self.proc, self.log)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def vm():
    if not (MEMVISOR.exists() and REMOTE.exists() and PROBE.exists()):
        pytest.skip("build/memvisor, build/memvisor-remote or the probe missing: run `make` first")
    if kvm_error() is not None:
        pytest.skip("no usable /dev/kvm (ci/testhost runs this suite where there is one)")
    tmp = Path(tempfile.mkdtemp(prefix="mv-api."))     # short: a socket path has 107 bytes
    v = Vm(tmp)
    try:
        yield v
    finally:
        v.kill()
        shutil.rmtree(tmp, ignore_errors=True)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def py_http(sock: Path, method: str, endpoint: str, body: str | bytes | None = None) -> tuple[int, str]:
    """One request with Python's http.client over the unix socket: (status, body)."""
    conn = _UnixConnection(sock)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            conn.request(method, f"/api/v1/{endpoint}", body=body, headers=headers)
        except BrokenPipeError:
            pass    # a 413 comes before the body is read: the answer is there all the same
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def curl_http(sock: Path, method: str, endpoint: str, body: str | bytes | None = None) -> tuple[int, str]:
    """The same with curl --unix-socket: the status from -w, the body from -o."""
    with tempfile.NamedTemporaryFile() as out, tempfile.NamedTemporaryFile() as data:
        argv = [CURL, "-sS", "--unix-socket", str(sock), "-X", method, "-o", out.name,
                "-w", "%{http_code}", f"http://localhost/api/v1/{endpoint}"]
        if body is not None:
            data.write(body.encode() if isinstance(body, str) else body)
            data.flush()
            argv += ["-H", "Content-Type: application/json", "--data-binary", f"@{data.name}"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return int(r.stdout), Path(out.name).read_text()


CLIENTS = [c for c in (curl_http if CURL else None, py_http) if c]


def remote(sock: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REMOTE), "--api-socket", str(sock), *args],
                          capture_output=True, text=True, timeout=30)


def test_socket_mode_ping_info(vm) -> None:
    st = os.lstat(vm.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    for client in CLIENTS:
        status, body = client(vm.sock, "GET", "vmm.ping")
        assert status == 200, body
        ping = json.loads(body)
        assert ping["pid"] == vm.proc.pid and ping["version"] and ping["features"] == []
        status, body = client(vm.sock, "GET", "vm.info")
        assert status == 200, body
        info = json.loads(body)
        assert info["state"] == "Running"
        assert info["memory_actual_size"] == BOOT_RAM
        mem = info["config"]["memory"]
        assert mem["size"] == BOOT_RAM and mem["hotplug_size"] == 256 * MiB
        assert mem["hotplug_method"] == "VirtioMem" and "zones" not in mem
        assert info["config"]["payload"]["kernel"] == str(PROBE)
        assert info["config"]["payload"]["cmdline"] == "hold memtest=off"
        assert info["config"]["cpus"] == {"boot_vcpus": 1, "max_vcpus": 1, "kvm_pv_eoi": True}
    r = remote(vm.sock, "ping")
    assert r.returncode == 0 and json.loads(r.stdout)["pid"] == vm.proc.pid, r.stderr
    # Requests ran on the main thread: no thread beside it and the one vCPU (KVM's own
    # kvm-nx-lpage-recovery worker counts as one of the process's tasks: left out).
    tasks = Path(f"/proc/{vm.proc.pid}/task")
    names = [(t / "comm").read_text().strip() for t in tasks.iterdir()]
    assert len([n for n in names if not n.startswith("kvm")]) == 2, names
    r = remote(vm.sock, "info")
    assert r.returncode == 0 and json.loads(r.stdout)["memory_actual_size"] == BOOT_RAM, r.stderr


# (method, endpoint, body, status, words of the one-line reason)
BAD_REQUESTS = [
    ("PUT", "vm.resize", "{", 400, "malformed JSON"),
    ("PUT", "vm.resize", '{"desired_ram": "1G"}', 400, "desired_ram: expected an integer"),
    ("PUT", "vm.resize", '{"desired_ram": -1}', 400, "a negative number"),
    ("PUT", "vm.resize", f'{{"desired_ram": {64 * MiB}}}', 400, "below the boot RAM 128M"),
    ("PUT", "vm.resize", f'{{"desired_ram": {BOOT_RAM + MiB}}}', 400, "not a multiple of the block size 2M"),
    ("PUT", "vm.resize", f'{{"desired_ram": {1 << 30}}}', 400, "more than the zone's 384M"),
    ("PUT", "vm.resize", '{"desired_vcpus": 2}', 400, "no CPU hotplug"),
    ("PUT", "vm.resize", '{"desired_balloon": 4096}', 400, "needs --balloon"),
    ("PUT", "vm.resize-zone", '{"id": "nope", "desired_ram": 268435456}', 400, "no memory zone 'nope'"),
    ("PUT", "vm.resize-zone", '{"desired_ram": 268435456}', 400, "missing field 'id'"),
    ("PUT", "vm.resize-zone", '{"id": "mem0"}', 400, "missing field 'desired_ram'"),
    ("PUT", "vm.resize", " " * 70000, 413, "larger than 65535 bytes"),
    ("GET", "nope", None, 404, "no such endpoint"),
    ("GET", "vm.resize", None, 405, "takes PUT, not GET"),
    ("PUT", "vm.info", None, 405, "takes GET, not PUT"),
]


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
def test_bad_requests_then_ping(vm, client) -> None:
    for method, endpoint, body, want, words in BAD_REQUESTS:
        status, text = client(vm.sock, method, endpoint, body)
        assert status == want, (method, endpoint, body[:40] if body else None, text)
        assert words in text and text.endswith("\n") and text.count("\n") == 1, text
        # The VM lives on and still answers.
        assert vm.proc.poll() is None
        assert client(vm.sock, "GET", "vmm.ping")[0] == 200
    info = json.loads(client(vm.sock, "GET", "vm.info")[1])
    assert info["memory_actual_size"] == BOOT_RAM and info["state"] == "Running"


def test_remote_errors(vm) -> None:
    r = remote(vm.sock, "resize", "--memory", "64M")
    assert r.returncode == 1 and "HTTP 400" in r.stderr and "below the boot RAM 128M" in r.stderr
    r = remote(vm.sock, "resize-zone", "--id", "nope", "--size", "1G")
    assert r.returncode == 1 and "no memory zone 'nope'" in r.stderr, r.stderr
    r = remote(vm.sock, "resize", "--cpus", "2")
    assert r.returncode == 1 and "no CPU hotplug" in r.stderr, r.stderr
    r = remote(vm.sock, "resize", "--memory", "12Q")
    assert r.returncode == 1 and "not a size" in r.stderr, r.stderr
    r = subprocess.run([str(REMOTE), f"--api-socket={vm.sock}.missing", "ping"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "No such file or directory" in r.stderr, r.stderr
    assert remote(vm.sock, "ping").returncode == 0


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
def test_vm_shutdown(vm, client) -> None:
    assert client(vm.sock, "PUT", "vm.shutdown") == (204, "")
    assert vm.wait() == 0
    assert not vm.sock.exists()


def test_remote_shutdown_vmm(vm) -> None:
    r = remote(vm.sock, "shutdown-vmm")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert vm.wait() == 0
    assert not vm.sock.exists()


def test_sigterm_removes_socket(vm) -> None:
    vm.proc.send_signal(signal.SIGTERM)
    assert vm.wait() == 128 + signal.SIGTERM
    assert not vm.sock.exists()


def test_existing_path_refused(tmp_path: Path) -> None:
    if not (MEMVISOR.exists() and PROBE.exists()):
        pytest.skip("build/memvisor or the probe missing: run `make` first")
    taken = tmp_path / "taken"
    taken.write_text("keep")
    r = subprocess.run([str(MEMVISOR), "--serial", "off", "--memory", "size=128M", "--kernel",
                        str(PROBE), "--api-socket", str(taken)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr == f"memvisor: --api-socket: {taken} exists (left by an earlier run? memvisor never replaces a file)\n"
    assert taken.read_text() == "keep"
    r = subprocess.run([str(MEMVISOR), "--serial", "off", "--memory", "size=128M", "--kernel",
                        str(PROBE), "--api-socket", str(tmp_path / "nodir" / "s")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "its directory does not exist" in r.stderr, r.stderr

"""conformance/linux.py's checks against hand-made memvisor-linux reports: each fact it reads
is shown to fail when the guest saw something else, and to pass when it saw what the oracle
expects (the reports real guests write are checked by test_linux_guest_qemu.py)."""
from __future__ import annotations

import re

from conformance import cases, linux

MiB = 1 << 20
BY_NAME = {c.name: c for c in cases.generate("full") if c.guest == "linux" and not c.steps}


def report(nodes: str, dist: str, extra: str = "", online: int = 2) -> str:
    return "\n".join([
        "console noise memvisor-linux 1",
        f"cpu online={online} possible=2",
        nodes, dist,
        "memory_blocks block_size=0x8000000 count=8 online=8 offline=0 auto_online=offline",
        extra,
        "PASS: modules", "PASS: memtest", "PASS: nodes", "PASS: read",
        "SUMMARY: ok pass=4 skip=0", ""])


GOOD_NODES = ("node id=0 cpus=0 mem_total=0x1a000000 mem_free=0x10000000\n"
              "node id=1 cpus=1 mem_total=0x1f000000 mem_free=0x1e000000")
MEMORY_ONLY_NODE1 = GOOD_NODES.replace("node id=1 cpus=1 mem", "node id=1 mem")
GOOD_DIST = "distance from=0 dist=10,20\ndistance from=1 dist=20,10"


def failures(text: str, name: str = "linux-numa2", rc: int = 143) -> list[str]:
    case = BY_NAME[name]
    return linux.check(case.expect, case.end, {"rc": rc, "stdout": text, "stderr": ""})


def test_every_linux_case_is_valid_and_named() -> None:
    assert set(linux.QUICK) <= set(BY_NAME)
    assert {c.name for c in linux.CASES} == set(BY_NAME)


def test_matching_report_passes() -> None:
    assert failures(report(GOOD_NODES, GOOD_DIST)) == []


def test_each_fact_can_fail() -> None:
    assert any("distances" in f for f in failures(report(GOOD_NODES, GOOD_DIST.replace("20", "21"))))
    assert any("nodes [0]" in f for f in failures(report(GOOD_NODES.split("\n")[0], GOOD_DIST)))
    assert any("node 1: CPUs []" in f for f in failures(report(MEMORY_ONLY_NODE1, GOOD_DIST)))
    small = GOOD_NODES.replace("0x1f000000 mem_free", "0x8000000 mem_free")
    assert any("node 1: MemTotal" in f for f in failures(report(small, GOOD_DIST)))
    assert any("CPUs online" in f for f in failures(report(GOOD_NODES, GOOD_DIST, online=1)))
    hot = "hotplug_range node=1 start=0x100000000 end=0x140000000"
    assert any("hotpluggable" in f for f in failures(report(GOOD_NODES, GOOD_DIST, hot)))
    offline = report(GOOD_NODES, GOOD_DIST).replace("offline=0", "offline=1")
    assert any("memory blocks" in f for f in failures(offline))
    assert any("status was 0" in f for f in failures(report(GOOD_NODES, GOOD_DIST), rc=0))
    bad = report(GOOD_NODES, GOOD_DIST).replace("PASS: memtest", "FAIL: memtest errors=1") \
        .replace("SUMMARY: ok pass=4", "SUMMARY: FAIL 1 pass=3")
    assert any("own checks failed" in f for f in failures(bad))
    assert any("unreadable" in f for f in failures("no report at all"))


def test_ends() -> None:
    poweroff = BY_NAME["linux-pvh-poweroff"]
    ok = {"rc": 0, "stdout": report(MEMORY_ONLY_NODE1, GOOD_DIST, online=1), "stderr": ""}
    assert linux.check(poweroff.expect, "poweroff", ok) == []
    assert linux.check(poweroff.expect, "poweroff", dict(ok, rc=4))
    panic = BY_NAME["linux-panic"]
    crash = {"rc": 2, "stdout": "", "stderr": "memvisor: vCPU 0: shutdown (triple fault) at rip=0x1"}
    assert linux.check(panic.expect, "panic", crash) == []
    assert linux.check(panic.expect, "panic", dict(crash, stderr=""))
    one = report("node id=0 cpus=0 mem_total=0x1c000000 mem_free=0x1a000000",
                 "distance from=0 dist=10", online=1).replace("count=8 online=8", "count=4 online=4")
    reboot = BY_NAME["linux-reboot"]
    assert linux.check(reboot.expect, "reboot", {"rc": 4, "stdout": one, "stderr": ""}) == []
    assert linux.check(reboot.expect, "reboot", {"rc": 0, "stdout": one, "stderr": ""})


def test_ends_under_qemu_are_read_from_the_console() -> None:
    """QEMU -no-reboot ends with 0 however the guest ended: the kernel's last line decides."""
    one = report("node id=0 cpus=0 mem_total=0x1c000000 mem_free=0x1a000000",
                 "distance from=0 dist=10", online=1).replace("count=8 online=8", "count=4 online=4")
    reboot = BY_NAME["linux-reboot"]
    restart = {"rc": 0, "stdout": one + "reboot: Restarting system\n", "stderr": ""}
    assert linux.check(reboot.expect, "reboot", restart, "qemu") == []
    assert linux.check(reboot.expect, "reboot", dict(restart, rc=4), "qemu")
    power_down = dict(restart, stdout=one + "reboot: Power down\n")
    assert any("'reboot: Restarting system'" in f
               for f in linux.check(reboot.expect, "reboot", power_down, "qemu"))
    panic = BY_NAME["linux-panic"]
    crash = {"rc": 0, "stdout": "Kernel panic - not syncing: sysrq triggered crash\n",
             "stderr": ""}
    assert linux.check(panic.expect, "panic", crash, "qemu") == []
    assert linux.check(panic.expect, "panic", dict(crash, stdout=""), "qemu")
    held = BY_NAME["linux-default"]
    assert linux.check(held.expect, "hold", {"rc": 0, "stdout": one, "stderr": ""}, "qemu") == []


def test_a_linux_case_that_hung_in_every_boot_fails_with_where_it_hung() -> None:
    from conformance import run
    case = BY_NAME["linux-numa2"]
    hung = {"name": case.name, "venue": "testhost", "timed_out": True, "rc": None, "stdout": "",
            "hung_attempts": [{}] * (linux.ATTEMPTS - 1), "setup_errors": [],
            "stderr": "memvisor: vCPU 0 at stop: rip=0xffffffff81a5a1a9 rflags=0x2\n"
                      "memvisor: vCPU 0 stack text: ffffffff81a59b29 ffffffff81158915"}
    bad = run.check(case, hung)
    assert bad and any("rip=0xffffffff81a5a1a9" in b for b in bad)
    assert any("stack text: ffffffff81a59b29" in b for b in bad)


def test_linux_in_the_test_host_has_no_paravirtual_eoi() -> None:
    from conformance import run
    from memvisor.venue import Decision
    full = cases.generate("full")
    groups = run.plan(full, Decision("testhost", "testhost", "asked", None, 1.0))
    assert len(groups["testhost"]) == len(full), "one test host for all, Linux included"
    from memvisor.driver import MemvisorDriver
    numa2 = next(c for c in full if c.name == "linux-numa2")
    argv = run.inhost_case(numa2, MemvisorDriver(), testhost=True)["argv"]
    assert argv[argv.index("--cpus") + 1] == "boot=2,kvm_pv_eoi=off"
    argv = run.inhost_case(numa2, MemvisorDriver())["argv"]
    assert argv[argv.index("--cpus") + 1] == "boot=2", "natively Linux keeps PV EOI"
    assert linux.in_testhost(["/b/memvisor", "--cpus", "boot=2", "--kernel", "k"]) == \
        ["/b/memvisor", "--cpus", "boot=2,kvm_pv_eoi=off", "--kernel", "k"]
    assert linux.in_testhost(["/b/memvisor", "--kernel", "k"]) == \
        ["/b/memvisor", "--kernel", "k", "--cpus", "kvm_pv_eoi=off"]
    assert linux.in_testhost(["qemu-system-x86_64", "-cpu", "host", "-smp", "1"]) == \
        ["qemu-system-x86_64", "-cpu", "host,kvm-pv-eoi=off", "-smp", "1"]


def test_foreign_initrd_shell_output() -> None:
    case = BY_NAME["linux-foreign-initrd"]
    assert case.config.initramfs == linux.FOREIGN_INITRAMFS and "rdinit=/bin/sh" in case.config.cmdline
    typed = "~ # echo FOREIGN online=$(cat /sys/devices/system/node/online)\n"
    good = (typed + "FOREIGN online=0-1\r\n"
            "FOREIGN node0 cpus=0 distance=10 20\r\nFOREIGN node1 cpus=1 distance=20 10\r\n")
    ok = {"rc": 0, "stdout": good, "stderr": ""}
    assert linux.check(case.expect, "shell", ok) == []
    assert linux.check(case.expect, "shell", dict(ok, rc=143))
    assert linux.check(case.expect, "shell", dict(ok, stdout=typed))        # never ran
    assert linux.check(case.expect, "shell", dict(ok, stdout=good.replace("=0-1", "=0")))
    assert linux.check(case.expect, "shell", dict(ok, stdout=good.replace("20 10", "10 10")))
    assert linux.check(case.expect, "shell", dict(ok, stdout=good.replace("cpus=0 ", "cpus= ")))
    extra = good + "FOREIGN node2 cpus= distance=20 20 10\n"
    assert linux.check(case.expect, "shell", dict(ok, stdout=extra))


def test_qemu_runs_cut_short_are_run_again_in_the_test_host() -> None:
    """Under QEMU in the test host a Linux run must end with one of the kernel's own last lines
    (a guest reset there without one); natively, and for a held guest, nothing is asked."""
    from conformance import compare, qemu
    from memvisor.driver import QemuDriver
    full = cases.generate("full")
    shell = BY_NAME["linux-foreign-initrd"]
    case = qemu.inhost_case(shell, QemuDriver(), compare.qemu_plan(shell), testhost=True)
    ends = re.compile(case["end_lines"])
    assert case["attempts"] == linux.ATTEMPTS > 1
    assert all(ends.search(f"[ 1.0] {line}\n") for line in linux.QEMU_END_LINES.values())
    assert not ends.search("[   26.937819] hpet: Lost 6 ")
    assert "end_lines" not in qemu.inhost_case(shell, QemuDriver(), compare.qemu_plan(shell))
    held = next(c for c in full if c.guest == "linux" and c.end == "hold"
                and not isinstance(compare.qemu_plan(c), compare.NotApplicable))
    assert "end_lines" not in qemu.inhost_case(held, QemuDriver(), compare.qemu_plan(held), True)

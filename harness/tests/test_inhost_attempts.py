"""inhost.run_case's attempts: a case that times out is run again, up to `attempts` times in all,
and every hung attempt stays in the result (nothing about a hang is hidden by the retry)."""
from __future__ import annotations

from pathlib import Path

from memvisor.inhost import run_case
from memvisor.runner import case_budget


def _case(tmp_path: Path, script: str, attempts: int) -> dict:
    return {"name": "t", "argv": ["sh", "-c", script], "timeout": 1, "attempts": attempts}


def test_hang_then_pass(tmp_path: Path) -> None:
    count = tmp_path / "n"
    # The first attempt hangs (sleeps past its timeout), the second exits 0.
    script = (f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; "
              f"echo attempt $n; [ $n -ge 1 ] || exec sleep 30")
    r = run_case(_case(tmp_path, script, 3))
    assert not r["timed_out"] and r["rc"] == 0
    assert r["stdout"].strip() == "attempt 1"
    assert len(r["hung_attempts"]) == 1
    assert r["hung_attempts"][0]["console_tail"] == ["attempt 0"]
    assert count.read_text().strip() == "2"


def test_always_hangs(tmp_path: Path) -> None:
    r = run_case(_case(tmp_path, "exec sleep 30", 2))
    assert r["timed_out"] and len(r["hung_attempts"]) == 1


def test_single_attempt_by_default(tmp_path: Path) -> None:
    case = _case(tmp_path, "exec sleep 30", 1)
    del case["attempts"]
    r = run_case(case)
    assert r["timed_out"] and r["hung_attempts"] == []
    assert case_budget(case) == 1 and case_budget({"timeout": 120, "attempts": 3}) == 360


def test_silence_ends_an_attempt_early(tmp_path: Path) -> None:
    """A console silent for idle_timeout seconds is a hang, long before the case's timeout;
    one that keeps printing is not."""
    case = {"name": "t", "argv": ["sh", "-c", "echo booting; exec sleep 30"], "timeout": 20,
            "idle_timeout": 1}
    r = run_case(case)
    assert r["timed_out"] and r["silent_s"] == 1 and r["seconds"] < 10
    chatty = dict(case, argv=["sh", "-c", "for i in 1 2 3 4; do echo $i; sleep 0.5; done"])
    r = run_case(chatty)
    assert not r["timed_out"] and r["rc"] == 0 and r["stdout"].split() == ["1", "2", "3", "4"]


def test_a_vmm_that_refuses_is_not_held_while_it_exits(tmp_path: Path) -> None:
    """The output ends (the pipe closes) before the process is reaped: a slow exit after a
    refusal must not be taken for a held guest and sampled (seen in the test host: QEMU's
    refusal sampled as if it held, its QMP socket already gone)."""
    case = {"name": "t", "argv": ["sh", "-c", "echo no >&2; exec >&-; sleep 1; exit 1"],
            "timeout": 10, "hold_marker": "SUMMARY:"}
    r = run_case(case)
    assert r["rc"] == 1 and not r["timed_out"]
    assert "during" not in r


def test_typed_input_waits_for_the_ready_answer(tmp_path: Path) -> None:
    """A console that throws away what is typed before it is reading (busybox ash answering
    its own ESC[6n) loses a plain typed line; with `ready` the line is typed once the ready
    text is answered."""
    guest = ('echo "job control turned off"; sleep 0.5; while read -t 0.05 x; do :; done; '
             'while read l; do case "$l" in ready) echo READY;; *) echo "got $l";; esac; done')
    typed = {"after": "job control turned off", "text": "hello\n"}
    case = {"name": "t", "argv": ["bash", "-c", guest], "timeout": 15}
    lost = run_case({**case, "input": typed})
    assert "got hello" not in lost["stdout"]
    r = run_case({**case, "input": {**typed, "ready": {"text": "ready\n", "line": "^READY"}}})
    assert "got hello" in r["stdout"], r["stdout"]


def test_a_run_cut_short_is_run_again(tmp_path: Path) -> None:
    """With `end_lines`, a VMM that exits without any of them on the console (its guest reset
    without a word from its kernel) is run again, and the cut attempt kept; one that ended with
    such a line, expected or not, is the case's result at once."""
    count = tmp_path / "n"
    script = (f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; "
              f"echo booting $n; [ $n -ge 1 ] && echo 'reboot: Power down'; exit 0")
    case = {**_case(tmp_path, script, 3), "timeout": 10,
            "end_lines": "reboot: Power down|Kernel panic"}
    r = run_case(case)
    assert r["rc"] == 0 and "reboot: Power down" in r["stdout"]
    assert [a["console_tail"] for a in r["cut_attempts"]] == [["booting 0"]]
    assert r["hung_attempts"] == [] and count.read_text().strip() == "2"
    panic = run_case({**case, "argv": ["sh", "-c", "echo 'Kernel panic - x'; exit 0"]})
    assert panic["cut_attempts"] == []
    always = run_case({**case, "argv": ["sh", "-c", "echo booting; exit 0"]})
    assert len(always["cut_attempts"]) == 2 and always["stdout"] == "booting\n"

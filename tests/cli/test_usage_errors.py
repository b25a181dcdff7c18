"""Usage mistakes and user errors through the installed `encoderlab` console script (a real subprocess),
whatever Typer/Click version is installed: Click's usage message and exit 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("encoderlab")


def run_script(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    if not SCRIPT.exists():
        pytest.skip(f"no installed console script at {SCRIPT}")
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, stdin=subprocess.DEVNULL)


# (arguments, a fragment of Click's error line)
MISTAKES = [
    (["train", "qa", "--foo", "3"], "No such option: --foo"),
    (["train", "qa", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["train", "classify", "--limit", "1.5"], "Invalid value for '--limit'"),
    (["train", "mlm", "--whole-word-mask", "yes"], "Got unexpected extra argument"),
    (["evaluate", "--predictions", "p.json"], "Missing option '--data'"),
    (["ask", "--model", "m", "--question", "q", "--context", "c", "--top-k", "0"], "Invalid value for '--top-k'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
    (["train", "nosuchtask"], "No such command 'nosuchtask'"),
    (["train", "qa", "--model"], "requires an argument"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("args,fragment", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_usage_mistake_is_click_usage_error_exit_2(args, fragment):
    proc = run_script(*args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and fragment in error_lines[0], proc.stderr
    assert proc.stdout == ""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", [[], ["train"], ["sweep"]], ids=["bare", "train", "sweep"])
def test_no_command_prints_help_and_exits_2(args):
    proc = run_script(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Usage: encoderlab" in proc.stdout + proc.stderr
    assert "Commands" in proc.stdout + proc.stderr


@pytest.mark.timeout(120)
def test_user_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "missing.json"
    proc = run_script("evaluate", "--data", str(missing), "--predictions", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {missing}: no such file"]
    for how in (["--debug"], []):
        env = {} if how else {"ENCODERLAB_DEBUG": "1"}
        proc = run_script(*how, "evaluate", "--data", str(missing), "--predictions", str(missing), env=env)
        assert proc.returncode == 2
        assert "Traceback (most recent call last)" in proc.stderr and "DataError" in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"error: {missing}: no such file"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("option", ["dropout", "attention_dropout"])
def test_out_of_range_dropout_through_the_installed_script_is_one_line_and_writes_nothing(tmp_path, option):
    out = tmp_path / "run"
    flag = "--" + option.replace("_", "-")
    proc = run_script("train", "classify", "--model", "scratch:bert-tiny", "--train", str(tmp_path / "t.tsv"),
                      flag, "1.5", "--output-dir", str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {option} ({flag}) must be less than 1, not 1.5"]
    assert not out.exists()


@pytest.mark.timeout(120)
def test_unknown_overlap_metric_is_one_line_exit_2(tmp_path):
    """A bad --metrics value: one line naming the allowed metrics, exit 2, before any file is read."""
    missing = tmp_path / "missing.json"
    for command in (["evaluate", "--data", str(missing), "--predictions", str(missing)],
                    ["compare", "m1", "m2", "--data", str(missing)]):
        proc = run_script(*command, "--metrics", "bleu,meteor,cider")
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            "error: --metrics: unknown metric 'cider' (allowed: bleu, rouge, meteor; a comma-separated list)"]
        assert proc.stdout == ""


@pytest.mark.timeout(60)
def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch, tmp_path):
    """ValueError / OSError from inside the library are bugs: they propagate (traceback), not `error: ...`."""
    import encoderlab.qa.evaluate as qa_evaluate
    from encoderlab.cli import main

    for exc in (ValueError("numpy broke"), OSError("disk driver broke")):
        def boom(*a, _exc=exc, **k):
            raise _exc

        monkeypatch.setattr(qa_evaluate, "evaluate_predictions", boom)
        with pytest.raises(type(exc), match="broke"):
            main(["evaluate", "--data", str(tmp_path / "d.json"), "--predictions", str(tmp_path / "p.json")])


@pytest.mark.timeout(120)
def test_help_and_prediction_file_evaluation_import_no_ml_library(tmp_path):
    """`encoderlab --help` and `evaluate --predictions` stay thin: no torch, transformers or datasets."""
    import json

    data = {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "q1", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    (tmp_path / "p.json").write_text(json.dumps({"q1": "France"}))
    probe = ("import sys, contextlib, io\n"
             "from encoderlab.cli import main\n"
             "out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out):\n"
             "    codes = [main(['--help']), main(['evaluate', '--data', sys.argv[1], '--predictions', sys.argv[2], '--json'])]\n"
             "heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'optuna', 'sklearn', 'matplotlib') if m in sys.modules)\n"
             "print(codes, heavy, out.getvalue().strip().splitlines()[-1])\n")
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "d.json"), str(tmp_path / "p.json")],
                          capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("[0, 0] [] "), proc.stdout
    assert json.loads(proc.stdout.strip()[len("[0, 0] [] "):])["exact"] == 100.0

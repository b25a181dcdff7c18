"""Crash safety: real training processes killed between checkpoints, while a checkpoint is written, and on
a full disk; each is resumed and must continue from the right step and end exactly like a run that was
never interrupted (same seed, fp32, length-grouped batches)."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _helpers import run_cli, step_recorder
from encoderlab.errors import EncoderlabError
from encoderlab.runs import RunDir
from encoderlab.training import TrainConfig, find_checkpoint, started_run

MAX_STEPS = 6
OPTIONS = dict(model="scratch:bert-tiny", train_split="train", eval_split="test", limit=32, eval_limit=4,
               max_seq_length=128, doc_stride=64, max_query_length=32, train_batch_size=4, eval_batch_size=16,
               max_steps=MAX_STEPS, eval_steps=2, logging_steps=1, precision="fp32", seed=7, learning_rate=1e-3)
FLAGS = ["--model", "scratch:bert-tiny", "--train-split", "train", "--eval-split", "test", "--limit", "32",
         "--eval-limit", "4", "--max-seq-length", "128", "--doc-stride", "64", "--max-query-length", "32",
         "--train-batch-size", "4", "--eval-batch-size", "16", "--max-steps", str(MAX_STEPS), "--eval-steps", "2",
         "--logging-steps", "1", "--precision", "fp32", "--seed", "7", "--lr", "1e-3"]
COMPARED = ("loss", "exact", "f1", "correct", "similar", "train_loss", "global_step")


def train(out: Path, *, resume=False, log=None, callbacks=None) -> dict:
    from encoderlab.qa.train import QATrainConfig, train_qa

    return train_qa(QATrainConfig(output_dir=str(out), **OPTIONS), resume=resume,
                    log=log if log is not None else (lambda m: None), callbacks=callbacks)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Every run here, in this process or spawned, on one thread: the same summation order everywhere
    (bit-exact comparisons), and no spinning threads fighting over a busy machine's cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("resume") / "reference"
    return out, train(out)


def spawn(out: Path, **env) -> subprocess.Popen:
    """`encoderlab train qa` in its own process (the same code and interpreter as this test)."""
    return subprocess.Popen([sys.executable, "-m", "encoderlab", "train", "qa", *FLAGS, "-o", str(out)],
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def logged_steps(out: Path) -> list[int]:
    return [r["step"] for r in RunDir(out).history() if "loss" in r]


def resume_and_check(out: Path, reference: dict, expected_checkpoint: int) -> list[str]:
    """Resume; the resumed invocation trains exactly the steps after the checkpoint, history has each step
    once, and the final metrics are the uninterrupted run's."""
    before = [r for r in RunDir(out).history() if r["step"] <= expected_checkpoint]
    messages, recorder = [], step_recorder()
    metrics = train(out, resume=True, log=messages.append, callbacks=[recorder])
    assert recorder.steps == list(range(expected_checkpoint + 1, MAX_STEPS + 1))   # not restarted from step 0
    assert f"resuming from {out / 'checkpoints' / f'checkpoint-{expected_checkpoint}'} (step {expected_checkpoint})" \
        in messages
    assert logged_steps(out) == list(range(1, MAX_STEPS + 1))                      # each step once
    assert RunDir(out).history()[:len(before)] == before                           # the killed run's records kept
    for key in COMPARED:
        assert math.isclose(metrics[key], reference[key], rel_tol=1e-6, abs_tol=1e-9), (key, metrics[key], reference[key])
    assert RunDir(out).status == "completed" and RunDir(out).read_json("run.json")["resumed"] is True
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    return messages


@pytest.mark.timeout(300)
def test_sigkill_between_checkpoints_then_resume(tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = spawn(out)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if any(step >= 3 for step in logged_steps(out) if (out / "history.jsonl").exists()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(60) == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    checkpoint = find_checkpoint(RunDir(out))
    assert checkpoint is not None
    step = int(Path(checkpoint).name.split("-")[1])
    assert step in (2, 4), checkpoint
    assert RunDir(out).status == "running" and not (out / "metrics.json").exists()
    resume_and_check(out, uninterrupted[1], step)


@pytest.mark.timeout(300)
def test_sigkill_while_a_checkpoint_is_written_resumes_from_the_previous_one(tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = spawn(out, ENCODERLAB_TEST_FAULT_IN_SAVE="kill@4")
    assert proc.wait(240) == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    left = out / "checkpoints" / ".tmp-checkpoint-4"
    assert (left / "model.safetensors").is_file() and not (left / "trainer_state.json").exists()
    assert not (out / "checkpoints" / "checkpoint-4").exists()
    assert find_checkpoint(RunDir(out)) == str(out / "checkpoints" / "checkpoint-2")
    messages = resume_and_check(out, uninterrupted[1], 2)
    assert any("removed 1 incomplete checkpoint" in m and ".tmp-checkpoint-4" in m for m in messages), messages


@pytest.mark.timeout(300)
def test_disk_full_while_saving_is_one_line_and_resumable(tmp_path, capsys, monkeypatch, uninterrupted):
    out = tmp_path / "run"
    monkeypatch.setenv("ENCODERLAB_TEST_FAULT_IN_SAVE", "enospc@4")
    code, _, err = run_cli(capsys, "train", "qa", *FLAGS, "-o", out)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err[-3000:]
    assert errors[0] == (f"error: disk full while writing checkpoint {out / 'checkpoints' / 'checkpoint-4'} "
                         f"(no space left on device); the previous checkpoint "
                         f"{out / 'checkpoints' / 'checkpoint-2'} is intact: free some space and rerun with --resume")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2"]    # nothing half-written
    assert RunDir(out).status == "failed" and not (out / "metrics.json").exists() and not (out / "model").exists()
    monkeypatch.delenv("ENCODERLAB_TEST_FAULT_IN_SAVE")
    resume_and_check(out, uninterrupted[1], 2)


@pytest.mark.timeout(60)
def test_resume_without_a_checkpoint_refuses_unless_asked_to_start_over(tmp_path):
    run = RunDir(tmp_path / "run")
    with pytest.raises(EncoderlabError, match=r"--resume: no complete checkpoint in .*checkpoints; use --resume-or-start"):
        with started_run(run, TrainConfig(), resume=True, overwrite=False, log=print):
            pass
    assert not run.path.exists()
    (run.checkpoints_dir / ".tmp-checkpoint-2").mkdir(parents=True)       # only a killed save's leftovers
    (run.checkpoints_dir / "checkpoint-2" ).mkdir()                          # no trainer state, no weights
    (run.checkpoints_dir / "checkpoint-2" / "config.json").write_text("{}")
    run.append_history({"step": 1, "loss": 9.0})
    for status in ("completed", None):           # a finished run, or files that are not a run: never replaced
        if status:
            run.write_json("run.json", {"status": status})
        else:
            (run.path / "run.json").unlink()
        with pytest.raises(EncoderlabError, match="--resume-or-start: .* and no checkpoint; pass --overwrite"):
            with started_run(run, TrainConfig(), resume="auto", overwrite=False, log=print):
                pass
        assert run.history() == [{"step": 1, "loss": 9.0}]
    run.write_json("run.json", {"status": "interrupted"})                    # a run of ours killed early
    messages = []
    with started_run(run, TrainConfig(), resume="auto", overwrite=False, log=messages.append) as checkpoint:
        assert checkpoint is None
    assert messages[-1] == f"no complete checkpoint in {run.checkpoints_dir}: starting from the beginning"
    assert list(run.checkpoints_dir.iterdir()) == [] and run.history() == []
    with pytest.raises(EncoderlabError, match="--resume and --overwrite exclude each other"):
        with started_run(run, TrainConfig(), resume=True, overwrite=True, log=print):
            pass


@pytest.mark.timeout(60)
def test_find_checkpoint_takes_the_newest_complete_one(tmp_path):
    run = RunDir(tmp_path)
    for step, files in ((2, ("trainer_state.json", "model.safetensors")), (4, ("trainer_state.json", "model.safetensors")),
                        (6, ("config.json", "model.safetensors")), (10, ("config.json",))):
        d = run.checkpoints_dir / f"checkpoint-{step}"
        d.mkdir(parents=True)
        for f in files:
            (d / f).write_text("x")
    (run.checkpoints_dir / ".tmp-checkpoint-8").mkdir()
    assert find_checkpoint(run) == str(run.checkpoints_dir / "checkpoint-4")   # not 10 (the string max), not 6


@pytest.mark.timeout(60)
def test_keep_history_drops_later_steps_and_a_torn_line(tmp_path):
    run = RunDir(tmp_path)
    for step in (1, 2, 3):
        run.append_history({"step": step, "loss": float(step)})
    with open(tmp_path / "history.jsonl", "a") as fh:
        fh.write('{"step": 4, "lo')                                           # killed mid-write
    assert run.keep_history(lambda r: r["step"] <= 2) == 2
    assert run.history() == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}]


@pytest.mark.timeout(120)
def test_overwrite_with_an_invalid_option_keeps_the_finished_run(tmp_path, capsys, uninterrupted):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted[0], out)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    metrics = (out / "metrics.json").read_text()
    # refused by encoderlab's own checks, by Transformers' TrainingArguments, and by the feature builder
    code, _, err = run_cli(capsys, "train", "qa", *FLAGS, "-o", out, "--overwrite", "--logging-steps", "0")
    assert code == 2 and "error: logging_steps (--logging-steps) must be at least 1" in err, err[-2000:]
    code, _, err = run_cli(capsys, "train", "qa", *FLAGS, "-o", out, "--overwrite", "--lr-scheduler-type", "zigzag")
    assert code == 2 and "error: invalid training option" in err and "Traceback" not in err, err[-2000:]
    code, _, err = run_cli(capsys, "train", "qa", *FLAGS, "-o", out, "--overwrite", "--doc-stride", "500")
    assert code == 2 and "error: doc_stride (--doc-stride) must be less than" in err, err[-2000:]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert (out / "metrics.json").read_text() == metrics and json.loads(metrics)["global_step"] == MAX_STEPS
    assert RunDir(out).status == "completed"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_really_full_disk_is_one_line_and_resumable_elsewhere(tmp_path, capsys, uninterrupted):
    """A real 80 MB tmpfs (root only): checkpoint-2 fits, checkpoint-4 does not (torch.save fails mid-file
    with no ENOSPC in its message). Then the run is moved to a disk with room and resumed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and a mountable tmpfs")
    try:
        code, _, err = run_cli(capsys, "train", "qa", *FLAGS, "-o", disk / "run")
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and "Traceback" not in err and len(errors) == 1, err[-3000:]
        assert errors[0].startswith(f"error: disk full while writing checkpoint {disk / 'run' / 'checkpoints' / 'checkpoint-4'}")
        assert sorted(p.name for p in (disk / "run" / "checkpoints").iterdir()) == ["checkpoint-2"]
        shutil.copytree(disk / "run", tmp_path / "run")
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    resume_and_check(tmp_path / "run", uninterrupted[1], 2)

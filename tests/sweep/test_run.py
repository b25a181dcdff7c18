"""End-to-end sweeps over scratch:bert-tiny on a few SQuAD questions; every trial is its own process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from _helpers import REPO, run_cli
from optuna.trial import TrialState

from encoderlab.runs import RunDir
from encoderlab.sweep.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(url: str, name: str):
    # through encoderlab's opener: this test polls a database that a worker may be creating at that moment
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=None))


def _grid_ids(trials):
    return sorted(t.system_attrs["grid_id"] for t in trials)


def _good_first_seed(spec, good_lr: float) -> int:
    """A sampler seed whose shuffled grid starts with the good learning rate (GridSampler shuffles its grid)."""
    for seed in range(100):
        if spec.sampler(seed)._all_grids[0][0] == good_lr:
            return seed
    raise AssertionError("no seed puts the good point first")


def test_grid_covers_each_point_once_prunes_the_bad_trial_and_reports(capsys, tmp_path, base_yaml, write_yaml):
    from encoderlab.config import build_config
    from encoderlab.qa.train import QATrainConfig
    from encoderlab.sweep.config import load_sweep

    sweep = write_yaml(tmp_path / "grid.yaml", {
        "method": "grid", "metric": {"name": "eval_loss", "goal": "minimize"},
        "parameters": {"learning_rate": {"values": [3.0e-3, 1.0e-9]}},       # 1e-9: learns nothing
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2, "s": 1}})
    seed = _good_first_seed(load_sweep(sweep), 3.0e-3)
    sdir = tmp_path / "sweep"
    args = ["sweep", "run", sweep, "--base", base_yaml, "--sweep-dir", sdir, "--name", "g", "--seed", seed]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "2 finished trials" in out
    url = f"sqlite:///{sdir / 'sweep.db'}"
    trials = _study(url, "g").trials
    assert len(trials) == 2 and _grid_ids(trials) == [0, 1]          # every grid point exactly once
    good, bad = sorted(trials, key=lambda t: -t.params["learning_rate"])
    assert good.state == TrialState.COMPLETE and bad.state == TrialState.PRUNED, (good.state, bad.state)
    assert bad.user_attrs["pruned_at"] == 1 and max(bad.intermediate_values) == 1
    assert sorted(good.intermediate_values) == [1, 2]                 # one report per evaluation
    assert good.value == pytest.approx(good.user_attrs["eval_loss"])
    for key in ("train_loss", "eval_loss", "exact", "f1", "correct"):
        assert isinstance(good.user_attrs[key], (int, float)), key
    run = RunDir(good.user_attrs["run_dir"])
    assert run.status == "completed" and (run.path / "metrics.json").exists() and run.model_dir.is_dir()
    assert run.read_config()["learning_rate"] == 3.0e-3 and run.read_config()["limit"] == 16
    assert (sdir / "logs" / f"trial-{good.number:04d}.log").exists()

    # rerunning continues to `count`: nothing left to do, no grid point repeated
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert len(_study(url, "g").trials) == 2

    code, out, err = run_cli(capsys, "sweep", "report", "g", "--sweep-dir", sdir, "--top", 5)
    assert code == 0, err
    assert "top 2 trials by eval_loss" in out and "complete" in out and "pruned" in out
    best_yaml = sdir / "report" / "best_config.yaml"
    assert str(best_yaml) in out and (sdir / "report" / "top_trials.png").stat().st_size > 1000
    assert (sdir / "report" / "history.png").exists()
    assert "importance.png" in err                                   # skipped: one completed trial only
    cfg = build_config(QATrainConfig, best_yaml, {})                  # `encoderlab train qa --config` accepts it
    assert cfg.learning_rate == 3.0e-3 and cfg.model == "scratch:bert-tiny" and cfg.output_dir == "runs/g-best"


def _trial_processes(marker: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "encoderlab.sweep.trial" in cmd and marker in cmd:
                pids.append(int(p.name))
    return pids


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills processes by pid and reads /proc")
def test_worker_killed_mid_trial_resumes_without_losing_or_repeating(capsys, tmp_path, base_yaml, write_yaml):
    sweep = write_yaml(tmp_path / "kill.yaml", {
        "method": "grid", "metric": {"name": "f1", "goal": "maximize"},
        "parameters": {"learning_rate": {"values": [1.0e-3, 2.0e-3, 3.0e-3]}}})
    sdir = tmp_path / "ksweep"
    url = f"sqlite:///{sdir / 'sweep.db'}"
    args = ["sweep", "run", str(sweep), "--base", str(base_yaml), "--sweep-dir", str(sdir), "--name", "k",
            "--heartbeat", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    worker = subprocess.Popen([sys.executable, "-m", "encoderlab", *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    killed_run = None
    try:
        deadline = time.monotonic() + 600              # generous: 2 loaded cores can be slow to start a trial
        while time.monotonic() < deadline and worker.poll() is None:   # wait: one trial finished, the next one training
            if (sdir / "sweep.db").exists():
                try:
                    trials = _study(url, "k").trials
                except KeyError:
                    trials = []
                running = [t for t in trials if t.state == TrialState.RUNNING and "run_dir" in t.user_attrs]
                if any(t.state == TrialState.COMPLETE for t in trials) and running \
                        and (Path(running[0].user_attrs["run_dir"]) / "run.json").exists():
                    killed_run = running[0]
                    break
            time.sleep(0.3)
        assert killed_run is not None, "the worker never got to its second trial"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
    deadline = time.monotonic() + 60       # the trial process dies with its worker (parent-death signal)
    while _trial_processes(str(sdir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _trial_processes(str(sdir))
    before = {t.number: t.state for t in _study(url, "k").trials}
    assert TrialState.COMPLETE in before.values() and before[killed_run.number] == TrialState.RUNNING

    code, out, err = run_cli(capsys, *args)          # resume: same command
    assert code == 0, err
    trials = _study(url, "k").trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and _grid_ids(complete) == [0, 1, 2]                  # count reached, no duplicates
    assert all(t.state == TrialState.COMPLETE for t in trials if before.get(t.number) == TrialState.COMPLETE)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [killed_run.number]                          # marked failed ...
    retry = [t for t in complete if t.system_attrs.get("failed_trial") == killed_run.number]
    assert len(retry) == 1 and retry[0].params == killed_run.params                    # ... and re-queued
    assert RunDir(killed_run.user_attrs["run_dir"]).status == "interrupted"


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_two_processes_share_one_sweep_on_postgresql(capsys, tmp_path, base_yaml, write_yaml, postgres_url):
    sweep = write_yaml(tmp_path / "pg.yaml", {
        "method": "grid", "metric": {"name": "eval_loss", "goal": "minimize"},
        "parameters": {"learning_rate": {"values": [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}}})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "encoderlab", "sweep", "run", str(sweep), "--base", str(base_yaml),
           "--storage", postgres_url, "--name", "shared"]
    # two `sweep run` processes (as on two machines: each with its own sweep directory), one with 2 workers
    a = subprocess.Popen(cmd + ["--sweep-dir", str(tmp_path / "a"), "--workers", "2"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    b = subprocess.Popen(cmd + ["--sweep-dir", str(tmp_path / "b")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        outs = [p.communicate(timeout=1200) for p in (a, b)]
    finally:                       # never leave sweep processes running against a server being torn down
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert a.returncode == 0 and b.returncode == 0, outs
    trials = _study(postgres_url, "shared").trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and _grid_ids(complete) == [0, 1, 2, 3]
    assert len({t.user_attrs["worker"] for t in complete}) >= 2           # both processes ran trials
    code, out, err = run_cli(capsys, "sweep", "report", "shared", "--storage", postgres_url,
                             "--sweep-dir", tmp_path / "a")
    assert code == 0, err
    assert (tmp_path / "a" / "report" / "importance.png").exists(), err
    best = yaml.safe_load((tmp_path / "a" / "report" / "best_config.yaml").read_text())
    assert best["learning_rate"] == min(complete, key=lambda t: t.value).params["learning_rate"]


def test_classification_sweep(capsys, tmp_path, write_yaml):
    """`task: classify`: trials run encoderlab.classify.train_classify and optimize accuracy."""
    pytest.importorskip("encoderlab.classify.train")
    import random

    rng = random.Random(0)
    good, bad = ["great", "lovely", "superb", "fine"], ["awful", "dull", "poor", "bad"]
    rows = ["sentence\tlabel"] + [f"a {rng.choice(good if y else bad)} film\t{y}" for y in [0, 1] * 24]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    base = write_yaml(tmp_path / "base.yaml", {
        "model": "scratch:bert-tiny", "train": str(tmp_path / "train.tsv"), "validation_fraction": 0.25,
        "max_steps": 2, "eval_steps": 1, "logging_steps": 1, "train_batch_size": 8, "max_seq_length": 32,
        "precision": "fp32", "save_total_limit": 1})
    sweep = write_yaml(tmp_path / "cls.yaml", {
        "method": "grid", "task": "classify", "metric": {"name": "accuracy", "goal": "maximize"},
        "parameters": {"learning_rate": {"values": [1.0e-3]}, "truncation": {"values": ["tail"]}}})
    sdir = tmp_path / "csweep"
    code, out, err = run_cli(capsys, "sweep", "run", sweep, "--base", base, "--sweep-dir", sdir, "--name", "c")
    assert code == 0, err
    (t,) = _study(f"sqlite:///{sdir / 'sweep.db'}", "c").trials
    assert t.state == TrialState.COMPLETE and t.value == pytest.approx(t.user_attrs["accuracy"])
    assert 0.0 <= t.value <= 1.0 and sorted(t.intermediate_values) == [1, 2]
    assert RunDir(t.user_attrs["run_dir"]).read_config()["truncation"] == "tail"


def test_failing_trials_are_recorded_and_stop_the_sweep_with_one_line(capsys, tmp_path, base_yaml, write_yaml):
    from _helpers import assert_one_line_error

    base = yaml.safe_load(base_yaml.read_text())
    broken = write_yaml(tmp_path / "broken.yaml", {**base, "train": str(tmp_path / "nowhere.json")})
    sweep = write_yaml(tmp_path / "f.yaml", {"method": "random", "metric": {"name": "f1", "goal": "maximize"},
                                             "parameters": {"learning_rate": {"min": 1.0e-4, "max": 1.0e-3}}})
    sdir = tmp_path / "fsweep"
    code, out, err = run_cli(capsys, "sweep", "run", sweep, "--base", broken, "--sweep-dir", sdir, "--name", "f",
                             "--count", 5, "--workers", 3)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert_one_line_error(code, lines[0] if len(lines) == 1 else err, "trials failed in a row", "nowhere.json")
    trials = _study(f"sqlite:///{sdir / 'sweep.db'}", "f").trials
    # 3 workers: after 3 failures in a row nothing new starts (a worker done early may have started one more)
    assert 3 <= len(trials) < 5 + 1 and all(t.state == TrialState.FAIL for t in trials)
    assert all("nowhere.json" in t.user_attrs["error"] for t in trials)
    assert "no such file" in (sdir / "logs" / "trial-0000.log").read_text()

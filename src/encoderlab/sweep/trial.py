"""One sweep trial, in its own process: ``python -m encoderlab.sweep.trial --study NAME --trial-id ID ...``.

The worker (runner.py) asks the study for a trial (sampling its parameters), then starts this
process, which

1. loads the study and the trial from storage (URL in ``$ENCODERLAB_SWEEP_STORAGE``, never on the
   command line, where it would show its password),
2. records a heartbeat every few seconds, so that a killed worker's trial is failed and re-queued,
3. builds the configuration: the sweep's base configuration + constants + the trial's parameters,
   output in SWEEP_DIR/trials/trial-NNNN (a normal run directory),
4. trains with the task's trainer and a `ReportCallback` that reports the objective at every
   evaluation (or training log for train_loss) and stops training when the pruner says so,
5. stores the final metrics as trial user attributes and tells the study COMPLETE / PRUNED / FAIL.

Accelerator memory and any in-process leak end with the process.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback as _Base
except ImportError:  # pragma: no cover - transformers is a hard dependency
    _Base = object



def reported_metrics(task: str, metrics: dict) -> dict:
    """The trial user attributes shown by `sweep report`: train_loss, eval_loss and the task's metrics
    (task registry), from the run's final metrics."""
    from ..tasks import get_task

    keys = [("train_loss", "train_loss"), ("eval_loss", "loss"), ("total", "total")]
    keys += [(m.name, m.name) for m in get_task(task).metrics if m.name != "loss"]
    return {name: metrics[key] for name, key in keys
            if key in metrics and (metrics[key] is None or isinstance(metrics[key], (int, float)))}


class ReportCallback(_Base):
    """Reports the sweep metric to Optuna as it appears; asks the pruner after each report.

    Step of a report = how many values were reported so far (W&B hyperband's iteration): for an
    evaluation metric that is the evaluation count, for train_loss the training-log count.
    """

    def __init__(self, trial, log_key: str, on_eval: bool):
        self.trial, self.log_key, self.on_eval = trial, log_key, on_eval
        self.reports = 0
        self.pruned = False
        self.values: list[float] = []

    def _report(self, value: Any, control) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(float(value)):
            return
        self.reports += 1
        self.values.append(float(value))
        self.trial.report(float(value), self.reports)
        if self.trial.should_prune():
            self.pruned = True
            control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.on_eval and logs and self.log_key in logs and not self.pruned:
            self._report(logs[self.log_key], control)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.on_eval and metrics and self.log_key in metrics and not self.pruned:
            self._report(metrics[self.log_key], control)


def set_parent_death_signal(parent_pid: int) -> None:
    """Linux: die with the worker (kill -9 of the worker must not leave an orphan trial training)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:      # the worker died before prctl took effect
        os._exit(1)


class Heartbeat:
    """Record the trial's heartbeat every `interval` seconds from a daemon thread."""

    def __init__(self, storage, trial_id: int, interval: int | None):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 - a transient database error must not kill training
                pass
            if self.stop.wait(self.interval):
                return

    def __enter__(self):
        if self.interval:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)


def trial_config(task: str, base: dict, constants: dict, params: dict, output_dir: str, report_to=None):
    """The task's training config for one trial: base + constants + sampled parameters."""
    from ..config import build_config
    from .config import task_api

    cls, _ = task_api(task)
    given = {**base, **constants, **params, "output_dir": output_dir}
    if report_to:
        given["report_to"] = list(report_to)
    names = cls.field_names()
    return build_config(cls, None, {k: v for k, v in given.items() if k in names})


def run_trial(*, study_name: str, trial_id: int, sweep_dir: Path, storage_url: str, heartbeat: int | None,
              report_to: list[str] | None = None, spawned_at: float | None = None, t_main: float | None = None,
              worker_pid: int | None = None) -> int:
    """Run one trial to its end; returns the process exit code (0 complete or pruned, 1 failed, 130 interrupted)."""
    import optuna
    from optuna.trial import TrialState

    t_imports = time.time()
    from .config import task_api
    from .storage import MAX_RETRY, load_sweep_study, open_storage

    storage = open_storage(storage_url, heartbeat=heartbeat)
    study, spec, base = load_sweep_study(study_name, storage)
    study.sampler = optuna.samplers.RandomSampler()   # parameters were sampled by the worker; nothing to infer
    trial = optuna.trial.Trial(study, trial_id)
    t_loaded = time.time()
    timing = {"process_start": round((t_main or t_imports) - spawned_at, 3) if spawned_at else None,
              "imports": round(t_imports - (t_main or t_imports), 3),
              "storage": round(t_loaded - t_imports, 3)}
    if trial.user_attrs.get("error"):      # a re-queued trial carries its predecessor's attributes
        trial.set_user_attr("error", None)
    run_dir = sweep_dir / "trials" / f"trial-{trial.number:04d}"
    trial.set_user_attr("run_dir", str(run_dir.resolve()))
    trial.set_user_attr("worker", f"{os.uname().nodename if hasattr(os, 'uname') else ''}:{worker_pid or os.getppid()}")
    metric = spec.metric_info
    callback = ReportCallback(trial, metric.log_key, metric.on_eval)
    with Heartbeat(storage, trial_id, heartbeat):
        try:
            cfg = trial_config(spec.task, base, spec.constants, trial.params, str(run_dir), report_to)
            _, train = task_api(spec.task)
            params = " ".join(f"{k}={v}" for k, v in trial.params.items())
            print(f"trial {trial.number}: {params} -> {run_dir}", flush=True)
            t_train = time.time()
            metrics = train(cfg, overwrite=True, log=lambda m: print(m, flush=True), callbacks=[callback])
            wall = time.time() - t_train
        except KeyboardInterrupt:
            _fail(study, trial, "interrupted", retry=MAX_RETRY)
            return 130
        except Exception as exc:  # noqa: BLE001 - any failure is the trial's, recorded in storage
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            print(f"trial {trial.number} failed: {msg}", file=sys.stderr, flush=True)
            _fail(study, trial, msg)
            return 1
        final = reported_metrics(spec.task, metrics)
        train_runtime = float(metrics.get("train_runtime") or 0.0)
        timing.update(train=round(train_runtime, 3), setup_and_eval=round(wall - train_runtime, 3))
        for k, v in final.items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("timing", timing)
        value = metrics.get(metric.final_key)
        if callback.pruned:
            trial.set_user_attr("pruned_at", callback.reports)
            study.tell(trial, state=TrialState.PRUNED)
            print(f"trial {trial.number} pruned after {callback.reports} reports", flush=True)
            return 0
        if value is None or not isinstance(value, (int, float)) or math.isnan(float(value)):
            _fail(study, trial, f"metric {metric.name} missing or NaN in the run's metrics.json")
            return 1
        study.tell(trial, float(value))
        print(f"trial {trial.number} complete: {metric.name} {value}", flush=True)
        return 0


def _fail(study, trial, message: str, retry: int | None = None) -> None:
    """Mark the trial FAIL with its reason; with `retry`, queue its parameters again (interrupted trials)."""
    import optuna
    from optuna.trial import TrialState

    try:
        trial.set_user_attr("error", message)
        study.tell(trial, state=TrialState.FAIL)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
        return
    if retry:
        requeue(study, trial._trial_id, retry)


def requeue(study, trial_id: int, max_retry: int) -> None:
    """Put a failed trial's parameters back in the queue (as Optuna does for heartbeat-stale trials)."""
    import copy
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = copy.deepcopy(study._storage.get_trial(trial_id))
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, frozen)


def main(argv: list[str] | None = None) -> int:
    t_main = time.time()
    ap = argparse.ArgumentParser(prog="python -m encoderlab.sweep.trial", description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True)
    ap.add_argument("--trial-id", type=int, required=True)
    ap.add_argument("--sweep-dir", required=True)
    ap.add_argument("--heartbeat", type=int, default=None)
    ap.add_argument("--report-to", default=None, help="comma-separated trackers")
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--spawned-at", type=float, default=None)
    args = ap.parse_args(argv)
    if args.parent_pid:
        set_parent_death_signal(args.parent_pid)
    url = os.environ.get("ENCODERLAB_SWEEP_STORAGE")
    if not url:
        print("error: ENCODERLAB_SWEEP_STORAGE is not set", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        import optuna

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return run_trial(study_name=args.study, trial_id=args.trial_id, sweep_dir=Path(args.sweep_dir),
                         storage_url=url, heartbeat=args.heartbeat,
                         report_to=[s for s in (args.report_to or "").split(",") if s] or None,
                         spawned_at=args.spawned_at, t_main=t_main, worker_pid=args.parent_pid)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

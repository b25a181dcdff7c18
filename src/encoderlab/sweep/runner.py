"""Run a sweep: create or join the study, then K local workers each run trials in their own process.

A worker loops: under a lock, fail heartbeat-stale trials (their parameters go back in the queue),
decide whether the sweep still needs a trial (``count`` finished trials, every grid point taken
once, ``run_cap``, ``metric.target``), ask the study for one (a re-queued trial first), then start
``python -m encoderlab.sweep.trial`` for it and wait. Any number of ``encoderlab sweep run``
processes, on any number of machines sharing a PostgreSQL storage, can work on one sweep.

Resume: every finished trial is in the storage the moment it ends. A worker killed with ``kill -9``
takes its trial process with it (Linux parent-death signal); that trial stops sending heartbeats,
and the next worker to ask marks it FAIL and re-queues its parameters. A trial process that dies
while its worker lives is failed and re-queued at once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import EncoderlabError
from ..tasks import get_task
from .config import SweepSpec, task_api
from .storage import (DEFAULT_HEARTBEAT, MAX_RETRY, check_name, create_or_join, default_storage, open_storage,
                      redact, sweep_dir_for)

MAX_CONSECUTIVE_FAILURES = 3


def load_base_config(task: str, path: str | Path | None, constants: dict | None = None) -> dict:
    """The base run configuration (YAML accepted by `encoderlab train TASK --config`) as a dict."""
    from ..config import build_config

    cls, _ = task_api(task)
    cfg = build_config(cls, Path(path) if path else None, {})
    base = cfg.to_dict()
    if constants:
        try:
            build_config(cls, None, {**base, **constants})
        except (TypeError, ValueError) as exc:
            raise EncoderlabError(f"sweep constants do not fit the {task} configuration ({exc})") from exc
    return base


def check_params_fit(spec: SweepSpec, base: dict) -> None:
    """Build the task config with each parameter's extreme / listed values, before any trial starts."""
    from ..config import build_config

    cls, _ = task_api(spec.task)
    for name, p in spec.params.items():
        samples = p.values if p.kind == "categorical" else [p.low, p.high]
        for v in samples:
            try:
                cfg = build_config(cls, None, {**base, **spec.constants, name: v})
                if name == "precision":
                    from ..training import resolve_precision

                    resolve_precision(cfg.precision)
            except (TypeError, ValueError, EncoderlabError) as exc:
                raise EncoderlabError(f"{spec.source}: parameters.{name}: value {v!r} does not fit ({exc})") from exc
    metric, held_out = spec.metric_info, get_task(spec.task).eval_option      # "eval", or MLM's "eval_corpus"
    values = {**base, **spec.constants}
    needs = build_config(cls, None, values).metric_requirement(metric.final_key)
    if needs:
        raise EncoderlabError(f"metric {spec.metric} is computed only with {needs} (in the base configuration or the "
                              f"sweep's constants)")
    if metric.on_eval and values.get(held_out) is None and values.get("validation_fraction", 1) == 0:
        raise EncoderlabError(f"metric {spec.metric} needs an evaluation set, but the base configuration has none "
                              f"({held_out} is not set and validation_fraction is 0)")


@dataclass
class SweepResult:
    name: str
    storage: str
    sweep_dir: Path
    finished: int
    states: dict[str, int]
    best: dict | None
    ran_here: list[int] = field(default_factory=list)
    stopped: str = ""


class SweepRunner:
    """Drives one sweep from this machine with `workers` concurrent trial processes."""

    def __init__(self, spec: SweepSpec, base: dict, *, name: str, sweep_dir: str | Path | None = None,
                 storage: str | None = None, count: int | None = None, workers: int = 1,
                 heartbeat: int = DEFAULT_HEARTBEAT, report_to: list[str] | None = None, seed: int | None = None,
                 log: Callable[[str], None] = print):
        self.spec, self.base, self.name = spec, base, check_name(name)
        self.sweep_dir = sweep_dir_for(name, sweep_dir)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self.storage_url = storage or default_storage(self.sweep_dir)
        if workers < 1:
            raise EncoderlabError(f"--workers must be at least 1, not {workers}")
        if heartbeat < 1:
            raise EncoderlabError(f"--heartbeat must be at least 1 second, not {heartbeat}")
        if count is not None and count < 1:
            raise EncoderlabError(f"--count must be at least 1, not {count}")
        self.workers, self.heartbeat, self.report_to, self.log = workers, heartbeat, report_to, log
        self.count = self._target_count(count)
        self.storage = open_storage(self.storage_url, heartbeat=heartbeat)
        self.study = create_or_join(name, self.storage, spec, base, seed=seed)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stop_reason = ""
        self.procs: dict[int, subprocess.Popen] = {}
        self.ran: list[int] = []
        self.failures = 0
        self.failure_msgs: list[str] = []

    def _target_count(self, count: int | None) -> int:
        spec = self.spec
        if spec.method == "grid":
            n = spec.grid_size() if count is None else min(count, spec.grid_size())
        elif count is None:
            if spec.run_cap is None:
                raise EncoderlabError(f"method {spec.method} needs --count N (or run_cap in the sweep file)")
            n = spec.run_cap
        else:
            n = count
        return min(n, spec.run_cap) if spec.run_cap else n

    # -- decisions ------------------------------------------------------------------------------
    def _next_trial(self):
        """Under the lock: a trial to run now, "wait" while others may still finish, or None (done)."""
        import warnings

        import optuna
        from optuna.trial import TrialState

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(self.study)
        trials = self.study.get_trials(deepcopy=False)
        by = {s: [t for t in trials if t.state == s] for s in TrialState}
        finished = len(by[TrialState.COMPLETE]) + len(by[TrialState.PRUNED])
        if self._target_reached(by[TrialState.COMPLETE]):
            self.stop_reason = f"metric target {self.spec.target} reached"
            return None
        if finished >= self.count:
            return None
        running, waiting = by[TrialState.RUNNING], by[TrialState.WAITING]
        if self.spec.method == "grid" and not waiting:
            taken = {t.system_attrs.get("grid_id") for t in trials}
            if len(taken - {None}) >= self.spec.grid_size():
                return "wait" if running else None
        if finished + len(running) >= self.count:
            return "wait" if running else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask(self.spec.distributions())
        self._beat(trial._trial_id)          # from now on the trial can go stale (a trial without beats never does)
        if self.spec.method == "grid" and self._duplicate_grid_point(trial):
            return "wait"
        return trial

    def _beat(self, trial_id: int) -> None:
        try:
            self.storage.record_heartbeat(trial_id)
        except Exception:  # noqa: BLE001 - a transient database error; the next beat may pass
            pass

    def _target_reached(self, complete) -> bool:
        if self.spec.target is None or not complete:
            return False
        values = [t.value for t in complete if t.value is not None]
        if not values:
            return False
        best = min(values) if self.spec.goal == "minimize" else max(values)
        return best <= self.spec.target if self.spec.goal == "minimize" else best >= self.spec.target

    def _duplicate_grid_point(self, trial) -> bool:
        """Another worker (another machine) took the same grid point at the same moment: give this one up."""
        from optuna.trial import TrialState

        mine = self.study._storage.get_trial(trial._trial_id)
        gid = mine.system_attrs.get("grid_id")
        for t in self.study.get_trials(deepcopy=False):
            if t.number == trial.number or t.system_attrs.get("grid_id") != gid:
                continue
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                    t.state == TrialState.RUNNING and t.number < trial.number):
                trial.set_user_attr("error", f"duplicate grid point (trial {t.number} has it)")
                self.study.tell(trial, state=TrialState.FAIL)
                return True
        return False

    # -- workers --------------------------------------------------------------------------------
    def run(self) -> SweepResult:
        self.log(f"sweep {self.name}: {self.spec.method} over {', '.join(self.spec.params) or 'nothing'} · "
                 f"{self.spec.goal} {self.spec.metric} · target {self.count} finished trials · "
                 f"{self.workers} worker(s) · storage {redact(self.storage_url)}")
        self._mark_interrupted_run_dirs()
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(self.workers)]
        for th in threads:
            th.start()
            time.sleep(0.05)
        try:
            while any(th.is_alive() for th in threads):
                for th in threads:
                    th.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop.set()
            self.stop_reason = "interrupted"
            for p in list(self.procs.values()):
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for th in threads:
                th.join(timeout=60)
            self.log(f"interrupted: running trials were marked failed and re-queued; rerun the same command "
                     f"to continue sweep {self.name}")
            raise
        self._mark_interrupted_run_dirs()
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            raise EncoderlabError(f"sweep {self.name}: {self.failures} trials failed in a row, stopping "
                                  f"(last: {self.failure_msgs[-1] if self.failure_msgs else 'see logs'}; "
                                  f"logs in {self.sweep_dir / 'logs'})")
        return self.result()

    def _worker(self, index: int) -> None:
        while not self.stop.is_set():
            with self.lock:
                if self.failures >= MAX_CONSECUTIVE_FAILURES:
                    self.stop.set()
                    return
                nxt = self._next_trial()
            if nxt is None:
                self.stop.set()
                return
            if nxt == "wait":
                time.sleep(min(2.0, max(0.5, self.heartbeat / 2)))
                continue
            self._run_one(nxt)
            if self.failures >= MAX_CONSECUTIVE_FAILURES:
                self.stop.set()
                return

    def _child_env(self) -> dict:
        env = dict(os.environ)
        env["ENCODERLAB_SWEEP_STORAGE"] = self.storage_url
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if "OMP_NUM_THREADS" not in os.environ:   # share the cores between concurrent trials
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.workers))
        return env

    def _run_one(self, trial) -> None:
        from optuna.trial import TrialState

        number, tid = trial.number, trial._trial_id
        params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        logs = self.sweep_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"trial-{number:04d}.log"
        cmd = [sys.executable, "-m", "encoderlab.sweep.trial", "--study", self.name, "--trial-id", str(tid),
               "--sweep-dir", str(self.sweep_dir), "--parent-pid", str(os.getpid()),
               "--spawned-at", repr(time.time()), "--heartbeat", str(self.heartbeat)]
        if self.report_to:
            cmd += ["--report-to", ",".join(self.report_to)]
        self.log(f"trial {number} started: {params}")
        t0 = time.time()
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self._child_env(),
                                    stdin=subprocess.DEVNULL)
            self.procs[number] = proc
            while True:            # the worker beats for its trial too: startup (imports) can outlast the grace period
                try:
                    rc = proc.wait(timeout=self.heartbeat)
                    break
                except subprocess.TimeoutExpired:
                    self._beat(tid)
        self.procs.pop(number, None)
        seconds = time.time() - t0
        frozen = self.study._storage.get_trial(tid)
        if frozen.state == TrialState.RUNNING:           # the process died without telling the study
            from .trial import requeue

            reason = f"trial process {'killed by signal ' + str(-rc) if rc < 0 else 'exited with code ' + str(rc)}"
            try:
                self.study._storage.set_trial_user_attr(tid, "error", reason)
                self.study.tell(number, state=TrialState.FAIL)
                # killed, or stopped before it could record anything (e.g. Ctrl-C during its start-up):
                # its configuration is owed to the sweep, so it runs again (a grid point is not lost)
                requeue(self.study, tid, MAX_RETRY)
                reason += "; parameters re-queued"
            except Exception:  # noqa: BLE001 - another worker failed it first
                pass
            frozen = self.study._storage.get_trial(tid)
            frozen.user_attrs.setdefault("error", reason)
        self.ran.append(number)
        state = frozen.state.name.lower()
        if frozen.state == TrialState.FAIL:
            self.failures += 1
            msg = frozen.user_attrs.get("error", f"see {log_path}")
            self.failure_msgs.append(msg)
            self.log(f"trial {number} failed after {seconds:.0f} s: {msg} (log: {log_path})")
            return
        self.failures = 0
        value = frozen.value if frozen.value is not None else (
            frozen.intermediate_values[max(frozen.intermediate_values)] if frozen.intermediate_values else None)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in self.study.get_trials(deepcopy=False))
        self.log(f"[{done}/{self.count}] trial {number} {state}: {self.spec.metric} {_short(value)} · {params} · "
                 f"{seconds:.0f} s")

    def _mark_interrupted_run_dirs(self) -> None:
        """Run directories of trials that a killed worker left 'running' are marked 'interrupted'."""
        from optuna.trial import TrialState

        from ..runs import RunDir

        for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            path = t.user_attrs.get("run_dir")
            if path and Path(path).is_dir() and RunDir(path).status == "running":
                try:
                    RunDir(path).finish("interrupted", error="worker killed; trial re-queued")
                except OSError:
                    pass

    def result(self) -> SweepResult:
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        states = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
        best = None
        try:
            b = self.study.best_trial
            best = {"number": b.number, "value": b.value, "params": b.params}
        except ValueError:
            pass
        return SweepResult(self.name, redact(self.storage_url), self.sweep_dir,
                           states["complete"] + states["pruned"], states, best, self.ran, self.stop_reason)


def run_sweep(sweep_file: str | Path, base_config: str | Path | None, *, name: str | None = None,
              task: str | None = None, count: int | None = None, workers: int = 1, storage: str | None = None,
              sweep_dir: str | Path | None = None, heartbeat: int = DEFAULT_HEARTBEAT,
              report_to: list[str] | None = None, seed: int | None = None,
              log: Callable[[str], None] = print) -> SweepResult:
    """Validate everything (sweep file, base config, parameter values, metric, trackers), then run."""
    from ..training import tracker_integrations
    from .config import load_sweep

    spec = load_sweep(sweep_file, task=task)
    base = load_base_config(spec.task, base_config, spec.constants)
    check_params_fit(spec, base)
    tracker_integrations(report_to)
    name = name or spec.name or Path(sweep_file).stem
    runner = SweepRunner(spec, base, name=name, sweep_dir=sweep_dir, storage=storage, count=count, workers=workers,
                         heartbeat=heartbeat, report_to=report_to, seed=seed, log=log)
    return runner.run()


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)

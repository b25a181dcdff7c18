"""`sweep report`: the top trials as a table, the best configuration as a YAML, PNG figures.

Figures (matplotlib, headless Agg):
  top_trials.png      per-trial bars of train loss / eval loss / the task's headline metric (F1 for
                      QA, accuracy for classification, perplexity for MLM) for the top N trials
  history.png         Optuna's optimization history (objective per trial and best so far)
  importance.png      Optuna's parameter importances (fANOVA); needs 2+ completed trials whose
                      parameters vary
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EncoderlabError
from ..tasks import get_task
from .config import SweepSpec

COMMON_COLUMNS = ("train_loss", "eval_loss")


def task_columns(task: str) -> tuple[str, ...]:
    """train_loss, eval_loss and the task's report columns (task registry)."""
    return COMMON_COLUMNS + get_task(task).report_columns


@dataclass
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    duration: float | None
    run_dir: str | None
    error: str | None = None


@dataclass
class SweepReport:
    name: str
    spec: SweepSpec
    base: dict
    rows: list[TrialRow]                # every trial, best first
    states: dict[str, int]
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def columns(self) -> tuple[str, ...]:
        return task_columns(self.spec.task)

    def top(self, n: int) -> list[TrialRow]:
        return [r for r in self.rows if r.state in ("complete", "pruned")][:n]

    def best(self) -> TrialRow | None:
        done = [r for r in self.rows if r.state == "complete"]
        return done[0] if done else None


def collect(study, spec: SweepSpec, base: dict, name: str) -> SweepReport:
    """Trials sorted best first: completed by objective, then pruned by their last reported value, then the rest."""
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        value = t.value
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        metrics = {k: t.user_attrs.get(k) for k in task_columns(spec.task) if k in t.user_attrs}
        rows.append(TrialRow(t.number, t.state.name.lower(), value, dict(t.params), metrics, duration,
                             t.user_attrs.get("run_dir"), t.user_attrs.get("error")))
    sign = 1 if spec.goal == "minimize" else -1
    rank = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "fail": 4}

    def key(r: TrialRow):
        ok = r.value is not None and not math.isnan(r.value)
        return (rank.get(r.state, 5), sign * r.value if ok else math.inf, r.number)

    rows.sort(key=key)
    states = {s.name.lower(): sum(t.state == s for t in study.get_trials(deepcopy=False)) for s in TrialState}
    return SweepReport(name, spec, base, rows, states)


def best_config(report: SweepReport, output_dir: str | None = None) -> dict:
    """The base configuration with the best trial's parameters: a YAML `encoderlab train TASK --config` accepts."""
    best = report.best()
    if best is None:
        raise EncoderlabError(f"sweep {report.name}: no completed trial yet")
    cfg = {**report.base, **report.spec.constants, **best.params}
    cfg["output_dir"] = output_dir or f"runs/{report.name}-best"
    return cfg


def write_best_config(report: SweepReport, path: Path) -> Path:
    import yaml

    from ..runs import atomic_write_text

    best = report.best()
    cfg = best_config(report)
    head = (f"# best trial {best.number} of sweep {report.name}: {report.spec.metric} {best.value}\n"
            f"# encoderlab train {report.spec.task} --config {path.name}\n")
    atomic_write_text(path, head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return path


def format_table(report: SweepReport, top: int):
    """A rich Table of the top trials."""
    from rich.table import Table

    rows = report.top(top)
    params = list(report.spec.params)
    # columns no listed trial has (e.g. the optional text-overlap metrics) are left out, as in the HTML report
    columns = [c for c in report.columns if any(c in r.metrics for r in rows)] or list(report.columns)
    t = Table(title=f"sweep {report.name}: top {len(rows)} trials by {report.spec.metric} ({report.spec.goal}) · "
                    + " · ".join(f"{k} {v}" for k, v in report.states.items() if v))
    for col in ["#", "trial", *params, *columns, "duration", "state"]:
        t.add_column(col, justify="left" if col in ("state",) else "right")
    for i, r in enumerate(rows, 1):
        t.add_row(str(i), str(r.number), *[_fmt(r.params.get(p)) for p in params],
                  *[_fmt(r.metrics.get(c)) for c in columns],
                  f"{r.duration:.0f} s" if r.duration is not None else "-", r.state)
    return t


def plot_report(report: SweepReport, study, out_dir: Path, top: int) -> tuple[list[Path], list[str]]:
    """Write top_trials.png, history.png and importance.png; return (written, skipped notes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    rows = report.top(top)
    headline = get_task(report.spec.task).headline_metric
    bars = [("train_loss", "train loss"), ("eval_loss", "eval loss"), (headline.name, headline.axis_label)]
    if rows:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        labels = [f"#{r.number}" for r in rows]
        for ax, (key, title) in zip(axes, bars):
            vals = [r.metrics.get(key) for r in rows]
            vals = [float(v) if isinstance(v, (int, float)) else math.nan for v in vals]
            colors = ["tab:blue" if r.state == "complete" else "tab:gray" for r in rows]
            drawn = ax.bar(labels, vals, color=colors)
            ax.bar_label(drawn, fmt="%.4g", fontsize=8)
            ax.margins(y=0.12)
            ax.set_title(title)
            ax.set_xlabel("trial (best first; grey = pruned)")
            ax.tick_params(axis="x", rotation=60 if len(rows) > 8 else 0)
        fig.suptitle(f"sweep {report.name}: top {len(rows)} trials by {report.spec.metric}")
        fig.tight_layout()
        written.append(_save(fig, out_dir / "top_trials.png"))
        plt.close(fig)
    else:
        skipped.append("top_trials.png (no finished trial)")
    import optuna.visualization.matplotlib as ovm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if complete:
            ax = ovm.plot_optimization_history(study, target_name=report.spec.metric)
            written.append(_save(ax.figure, out_dir / "history.png"))
            plt.close(ax.figure)
        else:
            skipped.append("history.png (no completed trial)")
        varying = [p for p in report.spec.params
                   if len({repr(t.params.get(p)) for t in complete}) > 1]
        if len(complete) >= 2 and varying:
            try:
                ax = ovm.plot_param_importances(study, target_name=report.spec.metric)
                written.append(_save(ax.figure, out_dir / "importance.png"))
                plt.close(ax.figure)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                skipped.append(f"importance.png ({str(exc).splitlines()[0]})")
        else:
            skipped.append("importance.png (needs 2+ completed trials with varying parameters)")
    return written, skipped


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def make_report(name: str, *, storage: str | None = None, sweep_dir: str | Path | None = None, top: int = 10,
                plots: bool = True) -> tuple[SweepReport, Any]:
    """Load sweep `name`, write best_config.yaml and the figures under SWEEP_DIR/report/."""
    from .storage import check_name, default_storage, load_sweep_study, open_storage, sweep_dir_for

    check_name(name)
    directory = sweep_dir_for(name, sweep_dir)
    if storage is None and not (directory / "sweep.db").exists():
        raise EncoderlabError(f"no sweep at {directory} (no sweep.db there); pass --sweep-dir or --storage")
    url = storage or default_storage(directory)
    study, spec, base = load_sweep_study(name, open_storage(url, heartbeat=None))
    report = collect(study, spec, base, name)
    out = directory / "report"
    if report.best() is not None:
        report.written.append(write_best_config(report, out / "best_config.yaml"))
    else:
        report.skipped.append("best_config.yaml (no completed trial)")
    if plots:
        w, s = plot_report(report, study, out, top)
        report.written += w
        report.skipped += s
    return report, study


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)

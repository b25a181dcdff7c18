"""`encoderlab sweep run|report`: W&B sweep files, run locally and offline on Optuna."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..tasks import DEFAULT_TASK, TASKS
from . import app

sweep_app = typer.Typer(no_args_is_help=True, help="Hyperparameter sweeps from W&B sweep files (Optuna, offline).")
app.add_typer(sweep_app, name="sweep")


@sweep_app.command("run")
def sweep_run_cmd(
    sweep_file: Path = typer.Argument(..., help="W&B sweep YAML: method, metric, parameters[, early_terminate, run_cap, task].",
                                      show_default=False),
    base: Optional[Path] = typer.Option(None, "--base", "-b", help="Run configuration YAML (as for `encoderlab train TASK --config`) that every trial starts from."),
    count: Optional[int] = typer.Option(None, "--count", "-n", help="Finished trials the sweep should reach (all machines together) \\[grid: every point; else run_cap]."),
    workers: int = typer.Option(1, "--workers", "-w", help="Trial processes to run at once on this machine."),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL shared by all workers, e.g. postgresql://user@host/db \\[SQLite file in the sweep directory]."),
    name: Optional[str] = typer.Option(None, "--name", help="Sweep (study) name; workers with the same name and storage join one sweep \\[the file's name: key, else its stem]."),
    task: Optional[str] = typer.Option(None, "--task", help=f"Task of the registry: {', '.join(TASKS)} "
                                       f"\\[the file's task: key, else {DEFAULT_TASK}]."),
    sweep_dir: Optional[Path] = typer.Option(None, "--sweep-dir", help="Where trial run directories, logs and the report go \\[sweeps/NAME]."),
    report_to: Optional[str] = typer.Option(None, "--report-to", help="Comma-separated optional trackers for every trial: tensorboard, wandb, mlflow (when installed)."),
    heartbeat: int = typer.Option(10, "--heartbeat", help="Seconds between a running trial's heartbeats; a trial silent for 3 heartbeats is failed and re-queued."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the sampler (random/bayes/grid order)."),
) -> None:
    """Run (or continue, or join) a sweep: each trial trains in its own process and writes a run directory.

    Rerun the same command to resume: finished trials are kept, an interrupted trial is re-queued.

    Example: encoderlab sweep run sweep.yaml --base base.yaml --count 12 --workers 2
    """
    from ..sweep.runner import run_sweep

    trackers = [s.strip() for s in report_to.split(",") if s.strip()] if report_to else None
    result = run_sweep(sweep_file, base, name=name, task=task, count=count, workers=workers, storage=storage,
                       sweep_dir=sweep_dir, heartbeat=heartbeat, report_to=trackers, seed=seed,
                       log=lambda m: typer.echo(m, err=True))
    states = " · ".join(f"{k} {v}" for k, v in result.states.items() if v)
    typer.echo(f"sweep {result.name}: {result.finished} finished trials ({states})"
               + (f" · stopped: {result.stopped}" if result.stopped else ""))
    if result.best:
        params = " ".join(f"{k}={v}" for k, v in result.best["params"].items())
        typer.echo(f"best: trial {result.best['number']} value {result.best['value']:.4g} · {params}")
    typer.echo(f"sweep directory: {result.sweep_dir} (report: encoderlab sweep report {result.name}"
               + (f" --sweep-dir {result.sweep_dir}" if sweep_dir else "") + (" --storage URL" if storage else "") + ")")


@sweep_app.command("report")
def sweep_report_cmd(
    name: str = typer.Argument(..., help="Sweep name.", show_default=False),
    storage: Optional[str] = typer.Option(None, "--storage", help="Storage URL \\[the SQLite file in the sweep directory]."),
    sweep_dir: Optional[Path] = typer.Option(None, "--sweep-dir", help="The sweep directory \\[sweeps/NAME]."),
    top: int = typer.Option(10, "--top", help="How many trials the table and the bar plots show."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG figures."),
    json_out: bool = typer.Option(False, "--json", help="Print the trials as JSON instead of a table."),
) -> None:
    """Top trials (params, train/eval loss, EM/F1, correct answers, duration, state), the best config as YAML, plots.

    Writes SWEEP_DIR/report/best_config.yaml (accepted by `encoderlab train TASK --config`),
    top_trials.png, history.png and importance.png.
    """
    import json

    from ..sweep.report import format_table, make_report

    if top < 1:
        raise typer.BadParameter("--top must be at least 1")
    report, _ = make_report(name, storage=storage, sweep_dir=sweep_dir, top=top, plots=not no_plots)
    if json_out:
        typer.echo(json.dumps([r.__dict__ for r in report.rows], default=str))
    else:
        from rich.console import Console

        Console(width=200).print(format_table(report, top))
    for note in report.skipped:
        typer.echo(f"skipped {note}", err=True)
    for path in report.written:    # with --json, stdout holds only the JSON
        typer.echo(str(path), err=json_out)

"""`encoderlab train TASK`: commands whose options are generated from the task's config dataclass.

Every option of a run is a field of the task's config (src/encoderlab/config.py, */config.py) with its help
text and flags in the field's metadata, so names, defaults and help are written once (as HfArgumentParser
does). An option left out on the command line is "not given": `build_config` applies `--config` values,
then the model's recipe values, then the dataclass defaults (both shown in `--help`).
"""
from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ..config import build_config, comma_list, field_kind
from . import train_app

RUN_CONTROL = ("config", "resume", "resume_or_start", "overwrite", "json_out")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _shown_default(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def config_parameters(config_cls) -> list[inspect.Parameter]:
    """One keyword-only Typer option per CLI field of `config_cls`, each defaulting to None ("not given")."""
    params = []
    for f in fields(config_cls):
        md = f.metadata
        if not md or not md.get("cli", True):
            continue
        kind = field_kind(f)
        flags = list(md.get("flags") or (f"--{f.name.replace('_', '-')}",))
        text = md.get("help", "")
        shown = []
        if md.get("show_default", True) and f.default is not MISSING and f.default is not None and f.default != "":
            shown.append(_shown_default(f.default))
        shown += [f"{model}: {_shown_default(values[f.name])}"           # a model's recipe (build_config)
                  for model, values in getattr(config_cls, "MODEL_DEFAULTS", {}).items() if f.name in values]
        if shown:
            text += f" [{'; '.join(shown)}]"
        if kind is bool:
            long = flags[0]
            flags[0] = f"{long}/--no-{long[2:]}"
            annotation = Optional[bool]
        elif kind is list:
            annotation = Optional[str]      # comma-separated on the command line
        else:
            annotation = Optional[kind or str]
        params.append(inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
            default=typer.Option(None, *flags, help=_escape(text), rich_help_panel=md.get("panel"))))
    # --help panels: the model, then the task's own (data, windows, …) in field order, then training
    panels = list(dict.fromkeys(["Model"] + [p.default.rich_help_panel for p in params] + ["Training"]))
    panels.remove("Training")
    order = {name: i for i, name in enumerate(panels + ["Training"])}
    return sorted(params, key=lambda p: order.get(p.default.rich_help_panel, len(order)))


def _run_control_parameters() -> list[inspect.Parameter]:
    def param(name, annotation, default):
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    panel = "Run"
    return [
        param("config", Optional[Path], typer.Option(None, "--config", "-c", rich_help_panel=panel,
                                                     help="YAML file of these options (names as in RUN/config.yaml); flags override it.")),
        param("resume", bool, typer.Option(False, "--resume", rich_help_panel=panel,
                                           help="Continue the run in --output-dir from its newest complete checkpoint "
                                                "(refused when there is none).")),
        param("resume_or_start", bool, typer.Option(False, "--resume-or-start", rich_help_panel=panel,
                                                    help="Like --resume, but start from the beginning when --output-dir "
                                                         "has no complete checkpoint.")),
        param("overwrite", bool, typer.Option(False, "--overwrite", rich_help_panel=panel,
                                              help="Replace an existing run directory (deleted only after every option "
                                                   "and the data are checked).")),
        param("json_out", bool, typer.Option(False, "--json", rich_help_panel=panel,
                                             help="Print the final metrics as JSON.")),
    ]


def train_command(config_cls, run: Callable[..., dict], show: Callable[[dict, Any], None]) -> Callable:
    """A Typer command for `config_cls`: its options come from the config's fields; it builds the config
    (defaults <- --config <- flags), calls ``run(cfg, resume=, overwrite=, log=)`` and prints the metrics with
    ``show(metrics, cfg)`` (or as JSON with --json)."""
    lists = {f.name for f in fields(config_cls) if field_kind(f) is list}

    def command(**kwargs: Any) -> None:
        given = {k: (comma_list(v) if k in lists else str(v) if isinstance(v, Path) else v)
                 for k, v in kwargs.items() if k not in RUN_CONTROL}
        cfg = build_config(config_cls, kwargs["config"], given)
        resume = "auto" if kwargs["resume_or_start"] else kwargs["resume"]   # the library's resume="auto"
        metrics = run(cfg, resume=resume, overwrite=kwargs["overwrite"],
                      log=lambda m: typer.echo(m, err=True))
        if kwargs["json_out"]:
            from ..runs import dumps

            typer.echo(dumps(metrics))
        else:
            show(metrics, cfg)

    command.__annotations__ = {}     # the options' types are in the signature
    command.__signature__ = inspect.Signature(config_parameters(config_cls) + _run_control_parameters())
    return command


def register_train_command(name: str, config_cls, run: Callable[..., dict], show: Callable[[dict, Any], None], *,
                           help: str, app: typer.Typer = train_app, hidden: bool = False) -> None:
    app.command(name, help=help, hidden=hidden)(train_command(config_cls, run, show))


def _fmt(value: float, scale) -> str:
    return f"{value:.2f}" if scale == 100 else f"{value:.4f}" if scale == 1 else f"{value:.4g}"


def show_final(task, metrics: dict, cfg) -> None:
    """The task's headline and report metrics (then its summary text, if the registry names one) and the run."""
    names = [task.headline, *task.report_columns, *(m.name for m in task.metrics if m.scale == 100), "loss"]
    shown = [task.metric(n) for n in dict.fromkeys(names) if isinstance(metrics.get(n), (int, float))]
    typer.echo(" · ".join(f"{m.name} {_fmt(metrics[m.name], m.scale)}" for m in shown))
    if task.summary:
        from ..tasks import resolve

        typer.echo(resolve(task.summary, task.name)(metrics))
    typer.echo(f"run directory: {cfg.output_dir} (model in {cfg.output_dir}/model)")


def register_task_commands(app: typer.Typer) -> None:
    """`train <task>` for every task of the registry, and its top-level aliases (`pretrain` = `train mlm`)."""
    from ..tasks import TASKS

    for task in TASKS.values():
        def run(cfg, _task=task, **kwargs) -> dict:
            return _task.train_fn()(cfg, **kwargs)

        def show(metrics, cfg, _task=task) -> None:
            show_final(_task, metrics, cfg)

        register_train_command(task.name, task.config_cls(), run, show, help=task.description)
        for verb in task.verbs:
            register_train_command(verb, task.config_cls(), run, show, app=app,
                                   help=f"Alias of `train {task.name}`. " + task.description)

"""One self-contained HTML page comparing run directories.

The page carries everything inline — CSS in a ``<style>`` element, figures as base64 PNG data URIs —
needs no JavaScript and loads nothing from elsewhere, so it can be mailed, archived or opened
offline. It holds:

- a comparison table of the runs' main metrics side by side, one per task: the task's report columns
  from the task registry (EM, F1, modified EM, correct / similar / incorrect, start / end token accuracy
  for QA; accuracy, F1, macro F1, MCC for classification; perplexity for masked-LM), train loss, eval
  loss, train minutes, the best value of each column highlighted;
- the curves of :mod:`encoderlab.reports.plots` (training/validation loss, the task's metrics during training);
- per run: status and timings (run.json), final metrics (metrics.json, or the last evaluation of an
  unfinished run), its configuration (config.yaml) and, for classification, the confusion matrix.

Every string that comes from a file is HTML-escaped.

    >>> write_report(["runs/a", "runs/b"], "report.html", title="a vs b")
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import EncoderlabError
from ..tasks import TASKS, Metric, Task
from .plots import Figures, NamedFigure, RunData, _is_number, figure_bytes, load_runs, make_figures


def esc(value: Any) -> str:
    """HTML-escape anything (quotes included, so the result is safe inside attributes too)."""
    return html.escape(str(value), quote=True)


# -- the comparison table ------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    header: str
    get: Callable[[RunData], tuple[Any, bool]]    # run -> (value or None, provisional?)
    better: str | None                            # "max", "min" or None (nothing to highlight)
    fmt: str                                      # format spec for numbers
    help: str


def _metric(key: str) -> Callable[[RunData], tuple[Any, bool]]:
    """metrics.json[key], else (for an unfinished run) the last evaluation's value, marked provisional."""
    def get(run: RunData) -> tuple[Any, bool]:
        if _is_number(run.metrics.get(key)):
            return run.metrics[key], False
        value = run.final_eval.get(key)
        return (value, True) if _is_number(value) else (None, False)
    return get


def _train_loss(run: RunData) -> tuple[Any, bool]:
    if _is_number(run.metrics.get("train_loss")):
        return run.metrics["train_loss"], False
    summary = [r for r in run.history if _is_number(r.get("train_loss"))]
    return (summary[-1]["train_loss"], False) if summary else (None, False)


def _train_minutes(run: RunData) -> tuple[Any, bool]:
    seconds = run.metrics.get("train_runtime")
    if not _is_number(seconds):
        summary = [r for r in run.history if _is_number(r.get("train_runtime"))]
        seconds = summary[-1]["train_runtime"] if summary else None
    return (seconds / 60.0, False) if _is_number(seconds) else (None, False)


COMMON_COLUMNS: tuple[Column, ...] = (
    Column("train loss", _train_loss, "min", ".4f", "mean training loss"),
    Column("eval loss", _metric("loss"), "min", ".4f", "validation loss of the final model"),
    Column("train min", _train_minutes, "min", ".2f", "training time in minutes"),
)
_SCALE_FORMATS = {100: ".2f", 1: ".4f"}     # percentages, fractions; unbounded values and counts: as they are


def metric_column(metric: Metric) -> Column:
    """A comparison-table column for a metric of the task registry."""
    better = None if metric.higher_is_better is None else ("max" if metric.higher_is_better else "min")
    return Column(metric.label, _metric(metric.name), better, _SCALE_FORMATS.get(metric.scale, ""),
                  metric.axis_label)


def task_columns(task: Task) -> tuple[Column, ...]:
    """The task's report columns (task registry), then train loss, eval loss and training minutes."""
    return tuple(metric_column(task.metric(name)) for name in task.report_columns) + COMMON_COLUMNS


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if spec == "d" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        try:
            return format(value, spec) if spec else (f"{value:.6g}" if isinstance(value, float) else str(value))
        except ValueError:
            return f"{value:.6g}" if isinstance(value, float) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def comparison_table(runs: Sequence[RunData]) -> str:
    """One table per task (runs of different tasks never share a column: a 0-1 F1 is not a 0-100 F1)."""
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(run.task.name, []).append(run)
    if len(groups) == 1:
        return _task_table(runs[0].task, runs)
    return "".join(f"<h3>{esc(TASKS[name].title)} runs</h3>{_task_table(TASKS[name], group)}"
                   for name, group in groups.items())


def _task_table(task: Task, runs: Sequence[RunData]) -> str:
    """The runs side by side, one row each, the task's columns; columns no run has are left out."""
    all_columns = task_columns(task)
    values = {c.header: [c.get(r) for r in runs] for c in all_columns}
    columns = [c for c in all_columns if any(v is not None for v, _ in values[c.header])]
    best: dict[str, set[int]] = {}
    for c in columns:
        nums = [(i, v) for i, (v, _) in enumerate(values[c.header]) if v is not None]
        if c.better and len(nums) > 1 and len({v for _, v in nums}) > 1:
            target = (max if c.better == "max" else min)(v for _, v in nums)
            best[c.header] = {i for i, v in nums if v == target}
    head = "".join(f'<th title="{esc(c.help)}">{esc(c.header)}'
                   f'{" ↑" if c.better == "max" else " ↓" if c.better == "min" else ""}</th>' for c in columns)
    rows = []
    any_provisional = False
    for i, run in enumerate(runs):
        cells = []
        for c in columns:
            value, provisional = values[c.header][i]
            any_provisional |= provisional
            cls = ["num"] + (["best"] if i in best.get(c.header, ()) else [])
            mark = '<sup class="prov">*</sup>' if provisional else ""
            cells.append(f'<td class="{" ".join(cls)}">{esc(_fmt(value, c.fmt))}{mark}</td>')
        rows.append(f'<tr><th scope="row"><a href="#{_anchor(run.name)}">{esc(run.name)}</a></th>'
                    f'<td>{_status_badge(run.status)}</td>{"".join(cells)}</tr>')
    notes = ['<span class="best-key">Highlighted</span>: best value of the column (↑ higher is better, '
             '↓ lower is better).']
    if any_provisional:
        notes.append('<sup class="prov">*</sup> from the last evaluation in history.jsonl: the run has no '
                     'metrics.json (not finished).')
    return (f'<div class="scroll"><table class="compare"><thead><tr><th>run</th><th>status</th>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div><p class="note">{" ".join(notes)}</p>')


# -- pieces --------------------------------------------------------------------------------------
def _anchor(name: str) -> str:
    return "run-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "x")


def _status_badge(status: str) -> str:
    known = {"completed", "running", "failed", "interrupted"}
    cls = status if status in known else "unknown"
    return f'<span class="status {cls}">{esc(status)}</span>'


def figure_html(nf: NamedFigure) -> str:
    """A <figure> with the PNG embedded as a data URI."""
    data = base64.b64encode(figure_bytes(nf.figure, "png")).decode("ascii")
    width, height = (int(round(v)) for v in nf.figure.get_size_inches() * nf.figure.dpi)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(nf.title)}" width="{width}" '
            f'height="{height}"><figcaption>{esc(nf.title)}</figcaption></figure>')


def _kv_table(items: list[tuple[str, Any]], pairs_per_row: int, cls: str) -> str:
    """key/value pairs laid out `pairs_per_row` to a row (a compact table)."""
    if not items:
        return '<p class="note">none</p>'
    rows = []
    for start in range(0, len(items), pairs_per_row):
        chunk = items[start:start + pairs_per_row]
        cells = "".join(f'<th scope="row">{esc(k)}</th><td>{esc(_fmt(v))}</td>' for k, v in chunk)
        cells += '<th></th><td></td>' * (pairs_per_row - len(chunk))
        rows.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table class="kv {cls}"><tbody>{"".join(rows)}</tbody></table></div>'


def _config_value(v: Any) -> Any:
    return "null" if v is None else v


def run_section(run: RunData, figures: Sequence[NamedFigure]) -> str:
    info = run.info
    facts = [("status", _status_badge(run.status)), ("directory", esc(run.path))]
    for key in ("started", "finished", "device", "encoderlab", "transformers", "torch"):
        if info.get(key) not in (None, ""):
            facts.append((key, esc(info[key])))
    if info.get("error"):
        facts.append(("error", f'<span class="error">{esc(info["error"])}</span>'))
    facts_html = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts)

    if run.metrics:
        shown = [(k, v) for k, v in run.metrics.items() if k not in ("confusion_matrix", "labels")]
        metrics_html = "<h3>Final metrics <small>metrics.json</small></h3>" + _kv_table(shown, 3, "metrics")
    elif run.final_eval:
        evals = run.eval_points
        step = evals[-1].get("step") if evals else None
        shown = [(k, v) for k, v in run.final_eval.items()]
        metrics_html = (f'<h3>Last evaluation <small>history.jsonl{f", step {esc(step)}" if step is not None else ""}'
                        f' — no metrics.json, the run is not finished</small></h3>' + _kv_table(shown, 3, "metrics"))
    else:
        metrics_html = '<h3>Final metrics</h3><p class="note">none: no metrics.json and no evaluation in history.jsonl</p>'

    config = [(str(k), _config_value(v)) for k, v in run.config.items()]
    config_html = ("<h3>Configuration <small>config.yaml</small></h3>" + _kv_table(config, 2, "config")
                   if config else '<h3>Configuration</h3><p class="note">no config.yaml</p>')
    figs_html = "".join(figure_html(nf) for nf in figures)
    return (f'<section class="run" id="{_anchor(run.name)}"><h2>{esc(run.name)}</h2><dl class="facts">{facts_html}'
            f"</dl>{metrics_html}{figs_html}{config_html}</section>")


CSS = """
:root { --fg:#1d2330; --muted:#5d6678; --line:#d9dee8; --bg:#ffffff; --soft:#f4f6fa; --accent:#2456c4;
        --best:#d8f3dc; --best-fg:#14532d; }
* { box-sizing: border-box; }
body { margin: 0; padding: 0 0 3rem; color: var(--fg); background: var(--bg);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { padding: 1.4rem 2rem 1rem; background: var(--soft); border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 .3rem; font-size: 1.6rem; }
header p { margin: 0; color: var(--muted); }
nav { margin-top: .6rem; } nav a { margin-right: 1rem; }
main { max-width: 1200px; margin: 0 auto; padding: 0 2rem; }
section { margin-top: 2rem; } section.run { border-top: 1px solid var(--line); padding-top: .4rem; }
h2 { font-size: 1.3rem; margin: 1rem 0 .6rem; } h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
h3 small { font-weight: normal; color: var(--muted); margin-left: .4rem; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.compare thead th { background: var(--soft); white-space: nowrap; border-bottom: 2px solid var(--line); }
table.compare th, table.compare td { padding: .3rem .5rem; } table.compare tbody th { white-space: nowrap; }
table.compare td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best, .best-key { background: var(--best); color: var(--best-fg); font-weight: 600; }
.best-key { padding: 0 .3rem; border-radius: 3px; }
table.kv th { color: var(--muted); font-weight: 500; white-space: nowrap; }
table.kv td { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem;
              word-break: break-all; min-width: 6rem; padding-right: 1.4rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .4rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem; font-weight: 600;
          background: #e5e7eb; color: #374151; }
.status.completed { background: #dcfce7; color: #166534; } .status.running { background: #dbeafe; color: #1e40af; }
.status.failed { background: #fee2e2; color: #991b1b; } .status.interrupted { background: #ffedd5; color: #9a3412; }
.error { color: #991b1b; }
figure { margin: 1rem 0; display: inline-block; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: .85rem; }
.note { color: var(--muted); font-size: .85rem; } sup.prov { color: #9a3412; }
ul.skipped { color: var(--muted); font-size: .85rem; }
"""


# -- the page ------------------------------------------------------------------------------------
def build_report(runs: Sequence[RunData], title: str | None = None, figures: Figures | None = None) -> str:
    """The HTML page for these runs (figures drawn here unless given)."""
    if not runs:
        raise EncoderlabError("give at least one run directory")
    figures = figures if figures is not None else make_figures(runs)
    title = title or "encoderlab report: " + ", ".join(r.name for r in runs)
    from .. import __version__

    shared = [nf for nf in figures if nf.run is None]
    per_run = {r.name: [nf for nf in figures if nf.run == r.name] for r in runs}
    curves = "".join(figure_html(nf) for nf in shared) or '<p class="note">no curves: nothing to plot</p>'
    skipped = ("<ul class=\"skipped\">" + "".join(f"<li>skipped {esc(s)}</li>" for s in figures.skipped) + "</ul>"
               if figures.skipped else "")
    nav = "".join(f'<a href="#{_anchor(r.name)}">{esc(r.name)}</a>' for r in runs)
    generated = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="encoderlab {esc(__version__)}">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p>{len(runs)} run{"s" if len(runs) != 1 else ""} · generated {esc(generated)} by encoderlab {esc(__version__)}</p>
<nav><a href="#comparison">comparison</a><a href="#curves">curves</a>{nav}</nav>
</header>
<main>
<section id="comparison"><h2>Comparison</h2>
{comparison_table(runs)}
</section>
<section id="curves"><h2>Curves</h2>
{curves}
{skipped}
</section>
{"".join(run_section(r, per_run[r.name]) for r in runs)}
</main>
</body>
</html>
"""


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise EncoderlabError(f"cannot write the report to {output}: it is a directory")
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                raise EncoderlabError(f"cannot write the report to {output}: {parent} is not a directory")
            break


def write_report(paths: Sequence[str | Path], output: str | Path, title: str | None = None) -> Path:
    """Read the runs, build the page and write it atomically to `output`. Returns the path."""
    from ..runs import atomic_write_text

    output = Path(output)
    _check_output(output)                         # fail before drawing anything
    runs = load_runs(paths)
    page = build_report(runs, title)
    try:
        atomic_write_text(output, page)
    except OSError as exc:
        raise EncoderlabError(f"cannot write the report to {output}: {exc.strerror or exc}") from None
    return output

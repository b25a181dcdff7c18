"""Figures from run directories: loss curves, task metrics per evaluation, confusion matrices.

The metrics drawn are each run's task's ``plots`` in the task registry (EM/F1 % and start/end token
accuracy for QA, accuracy/F1 and training accuracy for classification, perplexity for masked-LM runs,
on a log axis): evaluation metrics a point per evaluation, training metrics (``Metric.training``) a
point per logging window; metrics of different scales (a 0-1 F1, a 0-100 F1) get separate panels.
Loss and metric curves share the x axis choice (``step`` or ``epoch``).

Reads what a run writes through ``runs.RunDir`` (the one reader of run directories)::

    history.jsonl   {step, epoch, time, loss, learning_rate, grad_norm}            a logged training step
                    (+ train_accuracy for classification: the batches since the previous log)
                    {step, epoch, time, eval_loss, eval_exact, eval_f1, ...}       an evaluation
                    (QA: + eval_start_accuracy, eval_end_accuracy)
                    {step, epoch, time, train_runtime, train_loss, ...}            Trainer's end-of-training summary
                    {step, epoch, final: true, eval_...}                           the final evaluation (last line)
    metrics.json    final metrics; classification runs may add
                    ``confusion_matrix`` (rows = true label, columns = predicted) and ``labels``
    config.yaml, run.json

Every figure is a plain :class:`matplotlib.figure.Figure` drawn on the Agg canvas, never through
``pyplot``: nothing needs a display and no global figure state is kept. A figure whose data is absent
(a run without evaluations, a QA run without a confusion matrix) is left out and the reason recorded
in :attr:`Figures.skipped`.

    >>> figs = make_figures([load_run("runs/a"), load_run("runs/b")])
    >>> save_figures(figs, "runs/a/plots")          # [Path('runs/a/plots/loss.png'), ...]
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import EncoderlabError
from ..runs import RunDir, write_output
from ..tasks import DEFAULT_TASK, TASKS, Metric, Task, find_task, task_of_metrics

FORMATS = ("png", "svg")
X_AXES = ("step", "epoch")
PANELS_PER_ROW = 3          # metric panels per row of the metrics figure


# -- reading runs --------------------------------------------------------------------------------
@dataclass
class RunData:
    """Everything the plots and the report need from one run directory."""
    name: str                                   # shown in legends and headings (the directory name)
    path: Path
    config: dict[str, Any] = field(default_factory=dict)     # config.yaml ({} when absent)
    info: dict[str, Any] = field(default_factory=dict)       # run.json ({} when absent)
    metrics: dict[str, Any] = field(default_factory=dict)    # metrics.json ({} for an unfinished run)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.info.get("status"):
            return str(self.info["status"])
        return "completed" if self.metrics else "unknown"

    @property
    def task(self) -> Task:
        """The run's task (task registry): run.json's ``task``, its model's config, else the metrics it
        logged; a run that says nothing (written before tasks were recorded, no evaluation yet) is QA."""
        found = find_task(self.info.get("task")) or find_task(RunDir(self.path).task if self.path.is_dir() else None)
        return found or task_of_metrics([*self.metrics, *(k for r in self.history for k in r)]) or TASKS[DEFAULT_TASK]

    @property
    def train_points(self) -> list[dict[str, Any]]:
        """Logged training steps (records with ``loss``), one per step, in step order."""
        return _by_step(r for r in self.history if _is_number(r.get("loss")) and not r.get("final"))

    @property
    def eval_points(self) -> list[dict[str, Any]]:
        """Evaluations during training (records with an ``eval_*`` metric), one per step, in step order.

        The closing ``final`` record repeats (or re-evaluates the best checkpoint of) the last
        evaluation, so it is not a point of the curve.
        """
        return _by_step(r for r in self.history if not r.get("final")
                        and any(k.startswith("eval_") and k != "eval_runtime" for k in r))

    @property
    def final_eval(self) -> dict[str, Any]:
        """The ``final`` history record, else the last evaluation, without the ``eval_`` prefixes."""
        finals = [r for r in self.history if r.get("final")]
        source = finals[-1] if finals else (self.eval_points[-1] if self.eval_points else {})
        return {k[5:]: v for k, v in source.items() if k.startswith("eval_")}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _by_step(records: Iterable[dict]) -> list[dict]:
    """One record per step, the later one winning (a resumed run logs its steps again), sorted."""
    out: dict[Any, dict] = {}
    for r in records:
        if _is_number(r.get("step")):
            out[r["step"]] = r
    return [out[s] for s in sorted(out)]


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """Read one run directory. It must hold history.jsonl or metrics.json; other files are optional."""
    path = Path(path)
    if not path.is_dir():
        raise EncoderlabError(f"{path}: no such run directory" if not path.exists()
                              else f"{path}: not a run directory (a file, not a directory)")
    history_file, metrics_file = path / "history.jsonl", path / "metrics.json"
    if not history_file.is_file() and not metrics_file.is_file():
        raise EncoderlabError(f"{path}: not a run directory (no history.jsonl and no metrics.json)")
    run = RunData(name=name or path.resolve().name or str(path), path=path)
    rd = RunDir(path)                      # the one reader of run directories (errors name file and line)
    run.history = rd.history()
    if metrics_file.is_file():
        run.metrics = rd.read_json_object("metrics.json")
    if (path / "run.json").is_file():
        run.info = rd.read_json_object("run.json")
    if (path / "config.yaml").is_file():
        run.config = rd.read_config()
    return run


def run_names(paths: Sequence[str | Path]) -> list[str]:
    """Legend names: the directory names, widened with parent folders (or numbered) where they collide."""
    resolved = [Path(p).resolve() for p in paths]
    names = [p.name or str(p) for p in resolved]
    for depth in (2, 3):
        dupes = {n for n in names if names.count(n) > 1}
        if not dupes:
            break
        names = ["/".join(p.parts[-depth:]) if n in dupes else n for n, p in zip(names, resolved)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n} #{seen[n]}")
    return out


def load_runs(paths: Sequence[str | Path]) -> list[RunData]:
    """:func:`load_run` for each path, with unique legend names."""
    if not paths:
        raise EncoderlabError("give at least one run directory")
    return [load_run(p, n) for p, n in zip(paths, run_names(paths))]


# -- figures -------------------------------------------------------------------------------------
@dataclass
class NamedFigure:
    """A figure and the file stem it is saved under (``loss``, ``metrics``, ``confusion-RUN``)."""
    name: str
    title: str
    figure: Any                                  # matplotlib.figure.Figure
    run: str | None = None                       # the run it belongs to; None for figures of every run


@dataclass
class Figures:
    figures: list[NamedFigure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # one line per figure left out, with the reason

    def __iter__(self):
        return iter(self.figures)

    def __len__(self) -> int:
        return len(self.figures)


def _new_figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _check_x(x: str) -> None:
    if x not in X_AXES:
        raise EncoderlabError(f"unknown x axis '{x}' (choose step or epoch)")


def loss_figure(runs: Sequence[RunData], title: str | None = None, x: str = "step"):
    """Training loss (solid) and validation loss (dashed, dots) vs step or epoch; one colour per run.

    Returns None when no run has a logged loss or eval loss.
    """
    _check_x(x)
    series = []
    for run, color in zip(runs, _colors(len(runs))):
        train = [(r[x], r["loss"]) for r in run.train_points if _is_number(r.get(x))]
        val = [(r[x], r["eval_loss"]) for r in run.eval_points
               if _is_number(r.get(x)) and _is_number(r.get("eval_loss"))]
        if train or val:
            series.append((run.name, color, train, val))
    if not series:
        return None
    fig = _new_figure()
    ax = fig.add_subplot()
    for name, color, train, val in series:
        if train:
            ax.plot(*zip(*train), color=color, linewidth=1.6, label=f"{name} (train)")
        if val:
            ax.plot(*zip(*val), color=color, linestyle="--", marker="o", markersize=4, label=f"{name} (validation)")
    ax.set_xlabel(x)
    ax.set_ylabel("loss")
    ax.set_title(title or ("Loss: " + series[0][0] if len(runs) == 1 else "Training and validation loss"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def metric_panels(runs: Sequence[RunData]) -> list[Metric]:
    """The metrics to draw for these runs: each run's task's `plots` (task registry), in order, one panel
    per (label, scale) so that a 0-1 F1 and a 0-100 F1 never share an axis."""
    panels: list[Metric] = []
    for run in runs:
        task = run.task
        for name in task.plots:
            m = task.metric(name)
            if all((p.label, p.scale) != (m.label, m.scale) for p in panels):
                panels.append(m)
    return panels


def eval_metrics_figure(runs: Sequence[RunData], x: str = "step", metrics: Sequence[Metric] | None = None):
    """One panel per metric (EM, F1, start and end accuracy for QA, accuracy, F1 and training accuracy for
    classification, perplexity for MLM) with one line per run of that metric's task and scale, a point per
    evaluation (a training metric: per logging window); x is step or epoch.

    Returns None when no run has an evaluation with these metrics.
    """
    _check_x(x)
    panels = []
    for metric in (metric_panels(runs) if metrics is None else metrics):
        lines = []
        for run, color in zip(runs, _colors(len(runs))):
            if metric not in run.task.metrics:
                continue
            key = metric.history_key
            pts = [(r[x], r[key]) for r in (run.train_points if metric.training else run.eval_points)
                   if _is_number(r.get(x)) and _is_number(r.get(key))]
            if pts:
                lines.append((run.name, color, sorted(pts)))
        if lines:
            panels.append((metric, lines))
    if not panels:
        return None
    cols = min(len(panels), PANELS_PER_ROW)
    rows = math.ceil(len(panels) / cols)
    fig = _new_figure(5.0 * cols + 1.0, 4.2 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (metric, lines) in zip(axes, panels):
        for name, color, pts in lines:
            ax.plot(*zip(*pts), color=color, marker="o", markersize=4, label=name)
        if metric.log_axis:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(metric.axis_label)
        ax.set_title(f"{metric.label} per {'logging step' if metric.training else 'evaluation'}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def confusion_matrix_of(run: RunData) -> tuple[list[list[float]], list[str]] | None:
    """``(matrix, labels)`` from metrics.json, None when absent; a malformed one raises an error."""
    matrix, labels = run.metrics.get("confusion_matrix"), run.metrics.get("labels")
    if matrix is None:
        return None
    where = run.path / "metrics.json"
    if not isinstance(matrix, list) or not matrix or not all(isinstance(row, list) for row in matrix):
        raise EncoderlabError(f"{where}: confusion_matrix must be a non-empty list of lists of counts")
    n = len(matrix)
    if any(len(row) != n for row in matrix) or not all(_is_number(v) for row in matrix for v in row):
        raise EncoderlabError(f"{where}: confusion_matrix must be square ({n} rows) and hold only numbers")
    if labels is None:
        labels = [str(i) for i in range(n)]
    if not isinstance(labels, list) or len(labels) != n:
        raise EncoderlabError(f"{where}: labels must be a list of {n} names, one per confusion_matrix row")
    return matrix, [str(label) for label in labels]


def confusion_figure(run: RunData):
    """A heatmap of the confusion matrix (rows = true label, columns = predicted) with the counts."""
    found = confusion_matrix_of(run)
    if found is None:
        return None
    matrix, labels = found
    n = len(labels)
    side = min(max(4.0, 0.55 * n + 2.5), 16.0)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="count")
    ax.set_xticks(range(n), labels, rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"Confusion matrix: {run.name}")
    if n <= 30:                                   # beyond that the numbers would not fit in the cells
        peak = max((v for row in matrix for v in row), default=0) or 1
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                text = f"{v:g}" if isinstance(v, float) else str(v)
                ax.text(j, i, text, ha="center", va="center", fontsize=9 if n <= 12 else 7,
                        color="white" if v > peak / 2 else "black")
    return fig


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


def make_figures(runs: Sequence[RunData], *, combined: bool = True, x: str = "step") -> Figures:
    """All figures for these runs: loss (one figure with every run, or one per run when not `combined`),
    the task metrics (every run in one figure), and a confusion matrix per classification run.
    """
    out = Figures()
    loss_groups = [list(runs)] if combined else [[r] for r in runs]
    for group in loss_groups:
        stem = "loss" if combined else f"loss-{_file_stem(group[0].name)}"
        fig = loss_figure(group, x=x)
        who = "any run" if len(group) > 1 else group[0].name
        if fig is None:
            out.skipped.append(f"{stem}: no training or validation loss logged in {who}")
        else:
            out.figures.append(NamedFigure(stem, "Training and validation loss", fig,
                                           run=None if combined else group[0].name))
    panels = metric_panels(runs)
    fig = eval_metrics_figure(runs, x=x, metrics=panels)
    labels = "/".join(m.label for m in panels) or "task metrics"
    if fig is None:
        out.skipped.append(f"metrics: no evaluation with {labels} in history.jsonl of "
                           + ("any run" if len(runs) > 1 else runs[0].name))
    else:
        out.figures.append(NamedFigure("metrics", f"{labels} during training", fig))
    for run in runs:
        fig = confusion_figure(run)
        if fig is None:
            if run.task.labelled:   # e.g. a classification run
                out.skipped.append(f"confusion-{_file_stem(run.name)}: no confusion_matrix in metrics.json")
            continue
        out.figures.append(NamedFigure(f"confusion-{_file_stem(run.name)}", f"Confusion matrix: {run.name}", fig,
                                       run=run.name))
    return out


# -- output --------------------------------------------------------------------------------------
def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure encoded as PNG or SVG."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100, metadata={"Software": None} if fmt == "png" else None)
    return buf.getvalue()


def save_figures(figures: Figures | Iterable[NamedFigure], out_dir: str | Path, fmt: str = "png") -> list[Path]:
    """Write each figure to ``out_dir/<name>.<fmt>`` atomically (temporary file, then rename)."""
    if fmt not in FORMATS:
        raise EncoderlabError(f"unknown format '{fmt}' (choose {' or '.join(FORMATS)})")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EncoderlabError(f"cannot write plots to {out_dir}: it is a file, not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EncoderlabError(f"cannot create the plot directory {out_dir}: {exc.strerror or exc}") from None
    written = []
    for nf in figures:
        target = out_dir / f"{nf.name}.{fmt}"
        written.append(write_output(target, figure_bytes(nf.figure, fmt)))
    return written


def plot_runs(paths: Sequence[str | Path], out_dir: str | Path | None = None, *, fmt: str = "png",
              combined: bool = True, x: str = "step") -> tuple[list[Path], Figures]:
    """Load the runs, draw every figure, save them (default: ``<first run>/plots``).

    Returns the written paths and the :class:`Figures` (with the figure objects and the skip notes).
    """
    if fmt not in FORMATS:
        raise EncoderlabError(f"unknown format '{fmt}' (choose {' or '.join(FORMATS)})")
    runs = load_runs(paths)
    figures = make_figures(runs, combined=combined, x=x)
    target = Path(out_dir) if out_dir is not None else runs[0].path / "plots"
    return save_figures(figures, target, fmt), figures

"""`encoderlab plot` / `encoderlab report` on run directories written by hand (no training).

The runs imitate what `train qa` writes: history.jsonl lines with the recorded key sets (logged
steps, evaluations every 200 steps, Trainer's train_runtime summary, the closing "final" line),
metrics.json, config.yaml and run.json.
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _helpers import assert_one_line_error, run_cli
import yaml

from encoderlab.reports.html import build_report, write_report
from encoderlab.reports.plots import load_run, load_runs, make_figures, plot_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
XSS = "data/<script>alert('x')</script>.json"
EVAL_STEPS = (200, 400, 600, 734)


# -- run directories by hand ---------------------------------------------------------------------
def qa_history(shift: float = 0.0, steps: int = 734, eval_steps=EVAL_STEPS) -> list[dict]:
    """History lines shaped like a 2-epoch `train qa` run (367 steps an epoch, logging every 50)."""
    per_epoch = steps / 2
    lines, t = [], 13.46
    for step in range(1, steps + 1):
        epoch = step / per_epoch
        if step == 1 or step % 50 == 0:
            t += 110.0
            lines.append({"step": step, "epoch": epoch, "time": round(t, 2),
                          "loss": 1.2 + 4.8 * math.exp(-step / 180) + shift,
                          "grad_norm": 2.2 + 0.02 * step, "learning_rate": 1e-4 * min(1.0, step / 73) * (1 - step / steps)})
        if step in eval_steps:
            t += 97.2
            exact = 70.0 - 25.0 * math.exp(-step / 250) - 3 * shift
            f1 = exact + 13.3
            correct = round(4874 * exact / 100)
            similar = 1321 - step // 4
            lines.append({"step": step, "epoch": round(epoch, 4), "time": round(t, 2),
                          "eval_loss": 1.1 + 1.5 * math.exp(-step / 300) + shift, "eval_exact": exact, "eval_f1": f1,
                          "eval_total": 4874, "eval_HasAns_exact": exact, "eval_HasAns_f1": f1,
                          "eval_HasAns_total": 4874, "eval_missing": 0, "eval_extra_predictions": 0,
                          "eval_correct": correct, "eval_similar": similar, "eval_incorrect": 4874 - correct - similar,
                          "eval_modified_exact": exact + 6.8, "eval_features_per_second": 50.81, "eval_runtime": 97.223})
    lines.append({"step": steps, "epoch": 2.0, "time": round(t + 0.2, 2), "train_runtime": t - 40.0,
                  "train_samples_per_second": 13.4, "train_steps_per_second": 0.84, "total_flos": 1.6e15,
                  "train_loss": 2.1 + shift})
    last = {k: v for k, v in lines[-2].items() if k not in ("time", "eval_runtime")}
    lines.append({**last, "epoch": 2.0, "final": True})
    return lines


def write_run(root: Path, name: str, *, history: list[dict] | None = None, metrics: dict | None = None,
              config: dict | None = None, status: str = "completed") -> Path:
    run = root / name
    run.mkdir(parents=True)
    if history is not None:
        (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    (run / "config.yaml").write_text(yaml.safe_dump(config or {"model": "builtin:minilm-l6"}, sort_keys=False),
                                     encoding="utf-8")
    info = {"status": status, "started": "2026-11-23T16:42:07+0000", "resumed": False, "encoderlab": "0.1.0",
            "torch": "2.13.0+cpu", "transformers": "5.23.0", "python": "3.11.7", "machine": "x86_64", "device": "cpu"}
    if status == "completed":
        info["finished"] = "2026-11-23T17:20:41+0000"
    (run / "run.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return run


def qa_config(seed: int, train: str = "/work/shared/data/squad-v1.1/dev-v1.1.json") -> dict:
    return {"model": "builtin:minilm-l6", "output_dir": f"runs/seed{seed}", "learning_rate": 0.0001,
            "train_batch_size": 16, "num_train_epochs": 2.0, "max_steps": -1, "warmup_ratio": 0.1, "seed": seed,
            "eval_steps": 200, "logging_steps": 50, "early_stopping_patience": None, "metric_for_best_model": "f1",
            "group_by_length": True, "train": train, "split_file": "/work/shared/data/squad-v1.1/split.json",
            "train_split": "train", "eval_split": "test", "max_seq_length": 384, "doc_stride": 128}


def finished_qa_run(root: Path, name: str, seed: int, shift: float, train: str | None = None) -> Path:
    history = qa_history(shift)
    final = {k[5:]: v for k, v in history[-1].items() if k.startswith("eval_")}
    summary = history[-2]
    metrics = {**final, "train_loss": summary["train_loss"], "train_runtime": summary["train_runtime"],
               "train_features": 5871, "train_questions": 5738, "eval_features": 4957, "global_step": 734,
               "wall_seconds": round(summary["train_runtime"] + 120, 1)}
    return write_run(root, name, history=history, metrics=metrics,
                     config=qa_config(seed, **({"train": train} if train else {})))


CONFUSION = [[50, 3, 2], [4, 41, 5], [1, 6, 38]]
LABELS = ["negative", "neutral", "positive"]


def classification_run(root: Path, name: str = "sst-cls") -> Path:
    metrics = {"loss": 0.41, "accuracy": 0.86, "macro_f1": 0.858, "confusion_matrix": CONFUSION,
               "labels": LABELS, "train_loss": 0.52, "train_runtime": 301.5}
    return write_run(root, name, metrics=metrics, config={"task": "classification", "model": "builtin:minilm-l6"})


@pytest.fixture()
def two_runs(tmp_path):
    a = finished_qa_run(tmp_path, "minilm-seed1", 1, 0.0, train=XSS)
    b = finished_qa_run(tmp_path, "minilm-seed2", 2, 0.3)
    return a, b




def assert_png(path: Path, min_bytes: int = 10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > min_bytes, (path, len(data))


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


# -- plot ----------------------------------------------------------------------------------------
def test_plot_cli_writes_pngs_into_first_run(capsys, two_runs):
    a, b = two_runs
    code, out, err = run_cli(capsys, "plot", a, b)
    assert code == 0, err
    printed = [Path(line) for line in out.split()]
    assert printed == [a / "plots" / "loss.png", a / "plots" / "metrics.png"]
    for path in printed:
        assert_png(path)
    assert sorted(p.name for p in (a / "plots").iterdir()) == ["loss.png", "metrics.png"]   # no temporary left
    assert not (b / "plots").exists()


def test_plot_output_dir_and_svg(capsys, two_runs, tmp_path):
    a, b = two_runs
    out_dir = tmp_path / "figs" / "seeds"
    code, out, err = run_cli(capsys, "plot", a, b, "-o", out_dir, "--format", "svg")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["loss.svg", "metrics.svg"]
    for p in out_dir.iterdir():
        text = p.read_text(encoding="utf-8")
        assert "<svg" in text and "minilm-seed1" in text and "minilm-seed2" in text


def test_figures_have_both_runs_in_the_legends(two_runs):
    runs = load_runs(two_runs)
    figs = make_figures(runs)
    assert [f.name for f in figs] == ["loss", "metrics"] and figs.skipped == []
    loss, metrics = figs.figures[0].figure, figs.figures[1].figure
    assert legend_texts(loss.axes[0]) == ["minilm-seed1 (train)", "minilm-seed1 (validation)",
                                          "minilm-seed2 (train)", "minilm-seed2 (validation)"]
    # the EM and F1 panels: one line per run, a point per evaluation (the closing "final" line is not one)
    panels = [ax for ax in metrics.axes if ax.get_legend() is not None]
    assert [ax.get_ylabel() for ax in panels] == ["EM (%)", "F1 (%)"]
    history = runs[0].history
    evals = [r for r in history if "eval_exact" in r and not r.get("final")]
    for ax, key in zip(panels, ("eval_exact", "eval_f1")):
        assert legend_texts(ax) == ["minilm-seed1", "minilm-seed2"]
        line = ax.get_lines()[0]
        assert list(line.get_xdata()) == list(EVAL_STEPS)
        assert list(line.get_ydata()) == pytest.approx([r[key] for r in evals])
    # the training-loss line has every logged step, the validation line every evaluation
    train_line, val_line = loss.axes[0].get_lines()[:2]
    assert len(train_line.get_xdata()) == sum(1 for r in history if "loss" in r)
    assert list(val_line.get_xdata()) == list(EVAL_STEPS)


def test_separate_loss_figures_and_epoch_axis(tmp_path, two_runs):
    written, figs = plot_runs(two_runs, tmp_path / "out", combined=False, x="epoch")
    assert [p.name for p in written] == ["loss-minilm-seed1.png", "loss-minilm-seed2.png", "metrics.png"]
    assert legend_texts(figs.figures[0].figure.axes[0]) == ["minilm-seed1 (train)", "minilm-seed1 (validation)"]
    em = figs.figures[2].figure.axes[0]
    assert em.get_xlabel() == "epoch"
    assert list(em.get_lines()[0].get_xdata()) == pytest.approx([s / 367 for s in EVAL_STEPS], abs=1e-4)
    for p in written:
        assert_png(p)


def test_run_without_evaluations_skips_the_metrics_figure(capsys, tmp_path):
    history = [r for r in qa_history() if not any(k.startswith("eval_") for k in r)]
    run = write_run(tmp_path, "no-eval", history=history, status="running")
    code, out, err = run_cli(capsys, "plot", run)
    assert code == 0, err
    assert out.split() == [str(run / "plots" / "loss.png")]
    assert "skipped metrics: no evaluation with EM/F1/start accuracy/end accuracy in history.jsonl of no-eval" in err
    assert "Traceback" not in err


def test_metrics_only_run_draws_nothing_and_says_so(capsys, tmp_path):
    run = write_run(tmp_path, "evaluated", metrics={"exact": 80.1, "f1": 87.9, "total": 10570})
    code, out, err = run_cli(capsys, "plot", run)
    assert code == 0, err
    assert out.strip() == ""
    assert "skipped loss:" in err and "skipped metrics:" in err


def test_resumed_history_keeps_one_point_per_step(tmp_path):
    history = qa_history()
    cut = next(i for i, r in enumerate(history) if r.get("eval_exact") and r["step"] == 400)
    resumed = history[: cut + 1] + [dict(r, loss=r["loss"] + 0.01) for r in history[:cut] if r["step"] > 200 and "loss" in r] \
        + history[cut + 1:]
    run = load_run(write_run(tmp_path, "resumed", history=resumed))
    steps = [r["step"] for r in run.train_points]
    assert steps == sorted(set(steps))
    assert [r["step"] for r in run.eval_points] == list(EVAL_STEPS)


def test_confusion_matrix_heatmap_from_metrics_json(capsys, tmp_path):
    run = classification_run(tmp_path)
    figs = make_figures([load_run(run)])
    assert [f.name for f in figs] == ["confusion-sst-cls"]
    ax = figs.figures[0].figure.axes[0]
    assert ax.images[0].get_array().tolist() == CONFUSION
    assert [t.get_text() for t in ax.get_xticklabels()] == LABELS
    assert [t.get_text() for t in ax.get_yticklabels()] == LABELS
    counts = [t.get_text() for t in ax.texts]
    assert counts == [str(v) for row in CONFUSION for v in row]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted label", "true label")

    code, out, err = run_cli(capsys, "plot", run)
    assert code == 0, err
    assert out.split() == [str(run / "plots" / "confusion-sst-cls.png")]
    assert_png(run / "plots" / "confusion-sst-cls.png")


def test_classification_run_without_matrix_says_so(capsys, tmp_path):
    run = write_run(tmp_path, "cls", metrics={"accuracy": 0.9}, config={"task": "classification"})
    code, out, err = run_cli(capsys, "plot", run)
    assert code == 0 and "skipped confusion-cls: no confusion_matrix in metrics.json" in err


# -- report --------------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Collects the <img> sources and the comparison table's rows as {run: {header: (text, best?)}}."""

    def __init__(self):
        super().__init__()
        self.imgs, self.headers, self.rows = [], [], {}
        self._in_compare = self._in_head = False
        self._cell = None
        self._row = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        if tag == "table" and "compare" in (attrs.get("class") or ""):
            self._in_compare = True
        if not self._in_compare:
            return
        if tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = ["", "best" in (attrs.get("class") or "")]

    def handle_endtag(self, tag):
        if not self._in_compare:
            return
        if tag in ("th", "td") and self._cell is not None:
            self._row.append((self._cell[0].strip(), self._cell[1]))
            self._cell = None
        elif tag == "tr":
            if self._in_head:
                self.headers = [t.rstrip(" ↑↓") for t, _ in self._row]
            else:
                self.rows[self._row[0][0]] = dict(zip(self.headers, self._row))
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._in_compare = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


def parse(html_text: str) -> _Page:
    page = _Page()
    page.feed(html_text)
    return page


def test_report_cli_self_contained_page(capsys, two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "out" / "report.html"
    code, stdout, err = run_cli(capsys, "report", a, b, "-o", out, "--title", "Seeds <1 & 2>")
    assert code == 0, err
    assert stdout.strip() == str(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]      # written atomically
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Seeds &lt;1 &amp; 2&gt;</title>" in text
    assert "minilm-seed1" in text and "minilm-seed2" in text

    page = parse(text)
    assert len(page.imgs) == 2                                                  # loss + EM/F1
    for src in page.imgs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == PNG_MAGIC and len(png) > 10_000

    # escaped content from config.yaml, no active content or external resources at all
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.I)
    assert "<link" not in text and "@import" not in text and "url(" not in text

    # the comparison table: both runs, the main metrics, the best value per column highlighted
    assert set(page.rows) == {"minilm-seed1", "minilm-seed2"}
    for header in ("EM", "F1", "modified EM", "correct", "similar", "incorrect", "train loss", "eval loss", "train min"):
        assert header in page.headers
    assert "accuracy" not in page.headers                                       # no run has it
    m1 = json.loads((a / "metrics.json").read_text())
    s1, s2 = page.rows["minilm-seed1"], page.rows["minilm-seed2"]
    assert s1["EM"] == (f"{m1['exact']:.2f}", True) and s2["EM"][1] is False    # seed 1 is better everywhere
    assert s1["F1"][1] and s1["train loss"][1] and s1["eval loss"][1] and s1["incorrect"][1]
    assert not s1["similar"][1] and not s2["similar"][1]                         # no "better" for similar
    assert s1["train min"][0] == f"{m1['train_runtime'] / 60:.2f}"
    assert s1["status"][0] == "completed"


@pytest.mark.timeout(120)
def test_report_shows_overlap_metrics_of_runs_that_have_them(tmp_path, two_runs):
    """Text-overlap metrics in a run's metrics.json get comparison columns (registry labels, 2 decimals, best
    highlighted); runs without them show a dash; a report of runs that have none has no such column."""
    a, b = two_runs
    extra = {"bleu": 61.234, "rouge1": 70.5, "rouge2": 40.25, "rougeL": 70.125, "meteor": 55.0}
    metrics = json.loads((a / "metrics.json").read_text())
    (a / "metrics.json").write_text(json.dumps({**metrics, **extra}))
    page = parse(build_report(load_runs([a, b])))
    for header, key in (("BLEU", "bleu"), ("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL"),
                        ("METEOR", "meteor")):
        assert page.rows["minilm-seed1"][header] == (f"{extra[key]:.2f}", False)     # one value: nothing to beat
        assert page.rows["minilm-seed2"][header] == ("—", False)
    assert "METEOR (no synonyms)" not in page.headers
    page = parse(build_report(load_runs([b])))
    assert "BLEU" not in page.headers and "ROUGE-1" not in page.headers and "EM" in page.headers


def test_report_library_unfinished_and_classification_runs(tmp_path, two_runs):
    history = [r for r in qa_history(0.1) if "train_runtime" not in r and not r.get("final")]
    running = write_run(tmp_path, "still-running", history=history, status="running")
    cls = classification_run(tmp_path)
    runs = load_runs([two_runs[0], running, cls])
    text = build_report(runs)
    page = parse(text)
    assert len(page.imgs) == 3                                                  # loss, EM/F1, confusion matrix
    row = page.rows["still-running"]
    assert row["status"][0] == "running"
    assert row["EM"][0].endswith("*")                                           # from the last evaluation
    assert "no metrics.json, the run is not finished" in text
    assert page.rows["sst-cls"]["accuracy"][0] == "0.8600"
    assert "<title>encoderlab report: minilm-seed1, still-running, sst-cls</title>" in text


def test_write_report_returns_path(tmp_path, two_runs):
    out = write_report(two_runs, tmp_path / "r.html")
    assert out == tmp_path / "r.html" and out.stat().st_size > 20_000


def test_same_directory_names_get_distinct_legend_names(tmp_path):
    a = finished_qa_run(tmp_path / "x", "run", 1, 0.0)
    b = finished_qa_run(tmp_path / "y", "run", 2, 0.2)
    runs = load_runs([a, b])
    assert [r.name for r in runs] == ["x/run", "y/run"]


# -- bad input: one line, exit 2, no traceback ----------------------------------------------------
def test_not_a_run_directory(capsys, tmp_path, two_runs):
    (tmp_path / "empty").mkdir()
    for cmd in (["plot"], ["report", "-o", tmp_path / "r.html"]):
        code, _, err = run_cli(capsys, *cmd, two_runs[0], tmp_path / "empty")
        assert_one_line_error(code, err, "empty", "not a run directory (no history.jsonl and no metrics.json)")
    code, _, err = run_cli(capsys, "plot", tmp_path / "nowhere")
    assert_one_line_error(code, err, "nowhere: no such run directory")
    code, _, err = run_cli(capsys, "plot", two_runs[0] / "config.yaml")
    assert_one_line_error(code, err, "not a run directory")
    assert not (tmp_path / "r.html").exists()


def test_malformed_history_line_names_file_and_line(capsys, tmp_path):
    lines = [json.dumps(r) for r in qa_history()[:4]]
    lines[2] = lines[2][:-9]                                                    # a line cut short
    run = write_run(tmp_path, "broken", history=None)
    (run / "history.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for cmd in (["plot"], ["report", "-o", tmp_path / "r.html"]):
        code, _, err = run_cli(capsys, *cmd, run)
        assert_one_line_error(code, err, f"{run / 'history.jsonl'}:3: malformed JSON")
    (run / "history.jsonl").write_text('{"step": 1, "loss": 2.0}\n[1, 2]\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "plot", run)
    assert_one_line_error(code, err, "history.jsonl:2: expected a JSON object")


def test_malformed_metrics_config_and_confusion_matrix(capsys, tmp_path):
    run = write_run(tmp_path, "bad-metrics", metrics={"exact": 1.0})
    (run / "metrics.json").write_text('{"exact": 1.0,\n "f1": }\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "plot", run)
    assert_one_line_error(code, err, "metrics.json: malformed JSON at line 2")

    run = write_run(tmp_path, "bad-config", metrics={"exact": 1.0})
    (run / "config.yaml").write_text("model: [unclosed\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "report", run, "-o", tmp_path / "r.html")
    assert_one_line_error(code, err, "config.yaml", "malformed YAML")

    run = write_run(tmp_path, "bad-cm", metrics={"confusion_matrix": [[1, 2], [3]], "labels": ["a", "b"]})
    code, _, err = run_cli(capsys, "plot", run)
    assert_one_line_error(code, err, "metrics.json: confusion_matrix must be square")
    run = write_run(tmp_path, "bad-labels", metrics={"confusion_matrix": [[1, 2], [3, 4]], "labels": ["a"]})
    code, _, err = run_cli(capsys, "plot", run)
    assert_one_line_error(code, err, "labels must be a list of 2 names")


def test_unwritable_outputs(capsys, tmp_path, two_runs):
    a, _ = two_runs
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(capsys, "report", a, "-o", blocker / "report.html")
    assert_one_line_error(code, err, "cannot write the report to", "is not a directory")
    code, _, err = run_cli(capsys, "report", a, "-o", tmp_path)
    assert_one_line_error(code, err, "it is a directory")
    code, _, err = run_cli(capsys, "plot", a, "-o", blocker)
    assert_one_line_error(code, err, "it is a file, not a directory")
    code, _, err = run_cli(capsys, "plot", a, "-o", blocker / "sub")
    assert_one_line_error(code, err, "cannot create the plot directory")
    code, _, err = run_cli(capsys, "plot", a, "--format", "gif")
    assert_one_line_error(code, err, "unknown --format 'gif' (choose png or svg)")


@pytest.mark.timeout(60)
def test_permission_denied_leaves_nothing_half_written(capsys, monkeypatch, tmp_path, two_runs):
    """The final rename refused (EACCES; root cannot be refused by chmod, so the rename is made to fail):
    one line, the earlier outputs kept as they were, no temporary file left."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "report.html").write_text("the previous report")
    (locked / "loss.png").write_bytes(b"the previous plot")
    real_replace = os.replace

    def refuse(src, dst):
        if Path(dst).parent == locked:
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    code, _, err = run_cli(capsys, "report", two_runs[0], "-o", locked / "report.html")
    assert_one_line_error(code, err, f"cannot write the report to {locked / 'report.html'}", "Permission denied")
    code, _, err = run_cli(capsys, "plot", two_runs[0], "-o", locked)
    assert_one_line_error(code, err, f"cannot write {locked / 'loss.png'}", "Permission denied")
    assert sorted(p.name for p in locked.iterdir()) == ["loss.png", "report.html"]     # no .tmp leftovers
    assert (locked / "report.html").read_text() == "the previous report"
    assert (locked / "loss.png").read_bytes() == b"the previous plot"


# -- per-task figures (task registry) -------------------------------------------------------------
def mlm_history() -> list[dict]:
    history = [{"step": 0, "epoch": 0.0, "time": 0.0, "eval_loss": 10.3, "eval_perplexity": 29732.6}]
    for step in (1, 2, 3, 4):
        history.append({"step": step, "epoch": step / 2, "time": step, "loss": 10.0 - step})
        if step % 2 == 0:
            history.append({"step": step, "epoch": step / 2, "time": step, "eval_loss": 9.0 - step,
                            "eval_perplexity": math.exp(9.0 - step)})
    return history


@pytest.mark.timeout(60)
def test_mlm_run_gets_a_perplexity_curve_and_loss_on_epochs(tmp_path):
    run = write_run(tmp_path, "mlm", history=mlm_history(), metrics={"loss": 5.0, "perplexity": math.exp(5.0)})
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "task": "pretraining"}))   # the old name still reads as mlm
    written, figs = plot_runs([run], tmp_path / "out", x="epoch")
    assert [p.name for p in written] == ["loss.png", "metrics.png"]
    loss_ax = figs.figures[0].figure.axes[0]
    assert loss_ax.get_xlabel() == "epoch"
    assert list(loss_ax.get_lines()[0].get_xdata()) == [0.5, 1.0, 1.5, 2.0]      # training loss on epochs too
    (ppl,) = [ax for ax in figs.figures[1].figure.axes if ax.get_legend() is not None]
    assert ppl.get_ylabel() == "perplexity" and ppl.get_yscale() == "log"
    assert list(ppl.get_lines()[0].get_xdata()) == [0.0, 1.0, 2.0]
    assert list(ppl.get_lines()[0].get_ydata()) == pytest.approx([29732.6, math.exp(7.0), math.exp(5.0)])


@pytest.mark.timeout(60)
def test_classification_f1_and_qa_f1_never_share_an_axis(tmp_path, two_runs):
    cls_history = [{"step": s, "epoch": s / 10, "time": s, "eval_loss": 0.5, "eval_accuracy": 0.8, "eval_f1": 0.75}
                   for s in (5, 10)]
    cls = write_run(tmp_path, "cls", history=cls_history, metrics={"accuracy": 0.8, "f1": 0.75, "loss": 0.5})
    figs = make_figures(load_runs([two_runs[0], cls]))
    metrics = next(f for f in figs.figures if f.name == "metrics").figure
    panels = {ax.get_ylabel(): legend_texts(ax) for ax in metrics.axes if ax.get_legend() is not None}
    assert panels == {"EM (%)": ["minilm-seed1"], "F1 (%)": ["minilm-seed1"], "accuracy": ["cls"], "F1": ["cls"]}
    page = parse(build_report(load_runs([two_runs[0], cls])))
    assert page.rows["cls"]["F1"][0] == "0.7500" and "EM" not in page.rows["cls"]     # its own table
    assert "perplexity" not in page.headers


@pytest.mark.timeout(60)
def test_every_curve_follows_the_epoch_axis(capsys, tmp_path):
    """`plot --x epoch`: training loss, validation loss and every metric panel (QA and classification) on epochs."""
    qa = write_run(tmp_path, "qa", history=qa_history(), metrics={"exact": 60.0, "f1": 73.3})
    cls_history = [{"step": s, "epoch": s / 10, "time": s, "loss": 0.7 - s / 100} for s in (5, 10, 15, 20)]
    cls_history += [{"step": s, "epoch": s / 10, "time": s, "eval_loss": 0.5, "eval_accuracy": 0.8, "eval_f1": 0.75}
                    for s in (10, 20)]
    cls = write_run(tmp_path, "cls", history=cls_history, metrics={"accuracy": 0.8, "f1": 0.75, "loss": 0.5})
    code, out, err = run_cli(capsys, "plot", qa, cls, "--x", "epoch", "--separate", "-o", tmp_path / "out")
    assert code == 0, err
    figs = make_figures(load_runs([qa, cls]), combined=False, x="epoch")
    loss = {f.run: f.figure.axes[0] for f in figs.figures if f.name.startswith("loss-")}
    qa_train, qa_val = loss["qa"].get_lines()
    assert loss["qa"].get_xlabel() == loss["cls"].get_xlabel() == "epoch"
    assert list(qa_train.get_xdata())[:3] == pytest.approx([1 / 367, 50 / 367, 100 / 367]) and qa_train.get_xdata()[-1] == pytest.approx(700 / 367)
    assert list(qa_val.get_xdata()) == pytest.approx([s / 367 for s in EVAL_STEPS], abs=1e-4)
    assert [list(line.get_xdata()) for line in loss["cls"].get_lines()] == [[0.5, 1.0, 1.5, 2.0], [1.0, 2.0]]
    metrics = next(f for f in figs.figures if f.name == "metrics").figure
    panels = {ax.get_ylabel(): (ax.get_xlabel(), list(ax.get_lines()[0].get_xdata()))
              for ax in metrics.axes if ax.get_legend() is not None}
    qa_epochs = pytest.approx([s / 367 for s in EVAL_STEPS], abs=1e-4)
    assert panels == {"EM (%)": ("epoch", qa_epochs), "F1 (%)": ("epoch", qa_epochs),
                      "accuracy": ("epoch", [1.0, 2.0]), "F1": ("epoch", [1.0, 2.0])}


@pytest.mark.timeout(60)
def test_token_and_training_accuracy_get_their_own_panels_on_steps_and_epochs(capsys, tmp_path):
    """QA start/end accuracy (0-1, per evaluation) apart from EM/F1 (%), classification training accuracy
    (per logging window, from the training-step records) apart from eval accuracy; in the PNGs and the report."""
    qa = qa_history()
    for r in qa:
        if "eval_exact" in r:
            r["eval_start_accuracy"], r["eval_end_accuracy"] = r["step"] / 1000, r["step"] / 2000
    qa_run = write_run(tmp_path, "qa", history=qa, metrics={"exact": 60.0, "f1": 73.3, "start_accuracy": 0.734,
                                                            "end_accuracy": 0.367})
    cls_history = [{"step": s, "epoch": s / 10, "time": s, "loss": 0.7 - s / 100, "train_accuracy": s / 40}
                   for s in (1, 5, 10, 15, 20)]
    cls_history += [{"step": s, "epoch": s / 10, "time": s, "eval_loss": 0.5, "eval_accuracy": 0.8, "eval_f1": 0.75}
                    for s in (10, 20)]
    cls = write_run(tmp_path, "cls", history=cls_history, metrics={"accuracy": 0.8, "f1": 0.75, "loss": 0.5})
    for x in ("step", "epoch"):
        figs = make_figures(load_runs([qa_run, cls]), x=x)
        metrics = next(f for f in figs.figures if f.name == "metrics").figure
        panels = {ax.get_ylabel(): (ax.get_xlabel(), legend_texts(ax), list(ax.get_lines()[0].get_xdata()),
                                    list(ax.get_lines()[0].get_ydata()))
                  for ax in metrics.axes if ax.get_visible()}
        assert list(panels) == ["EM (%)", "F1 (%)", "start accuracy", "end accuracy", "accuracy", "F1",
                                "training accuracy"]
        qa_x = [s / 367 if x == "epoch" else s for s in EVAL_STEPS]
        assert panels["start accuracy"][:3] == (x, ["qa"], pytest.approx(qa_x, abs=1e-4))
        assert panels["start accuracy"][3] == pytest.approx([s / 1000 for s in EVAL_STEPS])
        assert panels["end accuracy"][3] == pytest.approx([s / 2000 for s in EVAL_STEPS])
        cls_x = [s / 10 if x == "epoch" else s for s in (1, 5, 10, 15, 20)]
        assert panels["training accuracy"] == (x, ["cls"], pytest.approx(cls_x), pytest.approx([s / 40 for s in
                                                                                              (1, 5, 10, 15, 20)]))
    code, out, err = run_cli(capsys, "plot", qa_run, cls, "--x", "epoch", "-o", tmp_path / "png")
    assert code == 0, err
    assert_png(tmp_path / "png" / "metrics.png")
    page = parse(build_report(load_runs([qa_run, cls])))
    assert page.rows["qa"]["start accuracy"][0] == "0.7340" and page.rows["qa"]["end accuracy"][0] == "0.3670"
    assert any("training accuracy" in t for t in re.findall(r'alt="([^"]*)"', build_report(load_runs([cls]))))

"""Every registered task, walked through train -> evaluate -> predict -> sweep -> report -> serve -> export
with a tiny model, knowing the task only through the registry (encoderlab.tasks): no test branches on a name."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from encoderlab.errors import EncoderlabError
from encoderlab.tasks import TASKS, get_task, resolve

TINY = {"model": "scratch:bert-tiny", "num_train_epochs": 2.0, "logging_steps": 1000, "train_batch_size": 8,
        "eval_batch_size": 8, "precision": "fp32", "warmup_ratio": 0.0, "learning_rate": 1e-3, "save_total_limit": 1}


@pytest.mark.timeout(20)
def test_registry_import_is_cheap_and_names_are_canonical():
    code = ("import sys, encoderlab.tasks as t; print(sorted(t.TASKS), t.get_task('pretraining').name, "
            "'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    assert out == "['classify', 'mlm', 'qa'] mlm False False"
    with pytest.raises(EncoderlabError, match=r"unknown task 'ner' \(known: qa, classify, mlm\)"):
        get_task("ner")
    for task in TASKS.values():
        assert task.headline in [m.name for m in task.optimizable()]
        assert set(task.report_columns) | set(task.plots) <= {m.name for m in task.metrics}
    assert get_task("qa").metric("f1").scale == 100 and get_task("classify").metric("f1").scale == 1
    assert get_task("mlm").headline_metric.goal == "minimize"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(TASKS))
def test_task_walkthrough(name, tmp_path, monkeypatch):
    from encoderlab.config import build_config
    from encoderlab.reports.html import build_report
    from encoderlab.reports.plots import load_runs, make_figures
    from encoderlab.runs import RunDir

    task = get_task(name)
    example = resolve(task.example, name)(tmp_path)

    # train: 2 epochs, logging_steps far beyond the run: the engine still logs a training loss each epoch
    run = tmp_path / "run"
    cfg = build_config(task.config_cls(), None, {**TINY, **example.config, "output_dir": str(run)})
    metrics = task.train_fn()(cfg, log=lambda m: None)
    assert math.isfinite(metrics[task.headline])
    history = RunDir(run).history()
    epochs = [r["epoch"] for r in history if "loss" in r]
    assert epochs[-2:] == pytest.approx([1.0, 2.0]) and len(epochs) <= 3      # (+ Trainer's first-step log)
    assert json.loads((run / "run.json").read_text())["task"] == name
    assert json.loads((run / "model" / "config.json").read_text())["encoderlab"]["task"] == name

    # evaluate and predict a saved model
    scores = task.evaluate_fn()(str(run / "model"), example.evaluate_data, **example.evaluate_kwargs)
    assert math.isfinite(scores[task.headline])
    predictions = task.predict_fn()(str(run), example.predict_inputs)
    assert len(predictions) == len(example.predict_inputs) and all(predictions)

    # a 2-trial sweep on the headline metric, in the registry's direction
    monkeypatch.setenv("PYTHONPATH", ":".join(p for p in sys.path if p))
    from encoderlab.sweep.report import make_report
    from encoderlab.sweep.runner import run_sweep

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({**TINY, **example.config, "max_steps": 2, "num_train_epochs": 1.0}))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"method": "grid", "task": name, "metric": {"name": task.headline},
                                     "parameters": {"learning_rate": {"values": [1e-3, 2e-3]}}}))
    result = run_sweep(sweep, base, sweep_dir=tmp_path / "sweep", log=lambda m: None)
    assert result.states.get("complete") == 2, result.states
    report, _ = make_report("sweep", sweep_dir=tmp_path / "sweep", plots=False)
    assert report.spec.goal == task.headline_metric.goal
    best = report.best()
    assert all(math.isfinite(r.value) for r in report.rows)
    assert (best.value <= report.rows[1].value) == (report.spec.goal == "minimize")
    assert {"train_loss", "eval_loss", task.headline} <= set(best.metrics)

    # report and plots: the task's headline column and its curve
    runs = load_runs([run])
    page = build_report(runs)
    assert f">{task.headline_metric.label}" in page
    figures = make_figures(runs, x="epoch")
    drawn = next(f for f in figures.figures if f.name == "metrics").figure
    labels = [ax.get_ylabel() for ax in drawn.axes if ax.get_legend() is not None]
    assert task.headline_metric.axis_label in labels

    # serve and export where the task supports it
    if task.servable:
        from fastapi.testclient import TestClient

        from encoderlab.serve import ServeSettings, create_app, load_backend

        app = create_app([load_backend("m", run)], ServeSettings(max_batch_size=4, max_wait_ms=1.0))
        with TestClient(app) as client:
            response = client.post(task.serve_route, json=example.serve_request)
        assert response.status_code == 200, response.text
    if task.exportable:
        from encoderlab.export.onnx import export_onnx

        exported = export_onnx(run, tmp_path / "onnx")
        assert exported.task == name and exported.max_abs_diff <= exported.tolerance
    if not task.servable:
        from encoderlab.serve import load_backend

        with pytest.raises(EncoderlabError, match="cannot be exported to ONNX or served"):
            load_backend("m", run)

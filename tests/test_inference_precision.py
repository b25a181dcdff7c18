"""Inference precision: `auto` (the default of evaluate --model, ask, predict classify and serve) runs bf16
autocast where the CPU is fast at it and fp32 elsewhere; explicit values win; bad values are one line."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from _helpers import REPO, assert_one_line_error, run_cli

CONTEXT = ("The committee wrote the report in 2019 after two years of hearings in Geneva. It was published by the "
           "university press and translated into four languages.")
QUESTIONS = ["Who wrote the report?", "Where were the hearings?", "When was it written?"]


def _logits(qa):
    """Start/end logits of every candidate of every question, in order (bf16 and fp32 differ in these)."""
    out = qa.answer_many(QUESTIONS, [CONTEXT] * len(QUESTIONS), top_k=5)
    return np.array([[a["score"] for a in rows] for rows in out])


@pytest.mark.timeout(120)
def test_auto_follows_the_cpu(monkeypatch, tiny_qa_run):
    import encoderlab.training as training
    from encoderlab.qa.predict import QuestionAnswerer

    model = str(tiny_qa_run[0] / "model")
    scores = {p: _logits(QuestionAnswerer(model, device="cpu", precision=p)) for p in ("fp32", "bf16")}
    # the two precisions give different scores, so the comparisons below can tell which one ran
    assert np.abs(scores["fp32"] - scores["bf16"]).max() > 1e-5
    for fast, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda fast=fast: fast)
        qa = QuestionAnswerer(model, device="cpu")                   # precision left at its default, auto
        assert qa.precision == expected
        np.testing.assert_array_equal(_logits(qa), scores[expected])


@pytest.mark.timeout(120)
def test_serving_backend_auto_follows_the_cpu(monkeypatch, tiny_qa_run):
    import encoderlab.training as training
    from encoderlab.serve import load_backend

    for fast, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda fast=fast: fast)
        assert load_backend("tiny", tiny_qa_run[0]).describe()["precision"] == expected
    assert load_backend("tiny", tiny_qa_run[0], precision="fp32").describe()["precision"] == "fp32"


@pytest.mark.timeout(120)
def test_evaluate_model_at_fp32_and_auto(monkeypatch, capsys, tiny_qa_run, tmp_path):
    """`evaluate --model` predicts at the precision asked: auto on a CPU without fast bf16 is fp32, and the
    fp32 predictions are the run's own (trained and evaluated in fp32)."""
    import json

    import encoderlab.training as training

    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: False)
    run_dir = tiny_qa_run[0]
    for precision in ("auto", "fp32"):
        code, _, err = run_cli(capsys, "evaluate", "--model", run_dir / "model", "--data", "builtin:squad-sample",
                               "--part", "test", "--limit", "24", "--json", "--precision", precision,
                               "--save-predictions", tmp_path / f"{precision}.json")
        assert code == 0, err
    run_preds = json.loads((run_dir / "predictions.json").read_text())
    assert json.loads((tmp_path / "auto.json").read_text()) == json.loads((tmp_path / "fp32.json").read_text()) == run_preds


@pytest.mark.parametrize("args", [
    ["ask", "--model", "scratch:bert-tiny", "--context", "Paris is in France.", "-q", "Where?", "--precision", "fp8"],
    ["evaluate", "--data", "builtin:squad-sample", "--model", "scratch:bert-tiny", "--precision", "half"],
    ["compare", "scratch:bert-tiny", "scratch:bert-tiny", "--data", "builtin:squad-sample", "--precision", "int4"],
    ["robustness", "scratch:bert-tiny", "--data", "a=builtin:squad-sample", "--data", "b=builtin:squad-sample",
     "--precision", "fp64"],
    ["predict", "classify", "scratch:bert-tiny", "a text", "--precision", "bfloat"],
])
@pytest.mark.timeout(120)
def test_bad_precision_is_one_line(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "precision must be auto, fp32, bf16 or fp16", f"not '{args[-1]}'")


@pytest.mark.timeout(120)
def test_onnx_backend_refuses_a_precision_through_the_installed_script(tmp_path):
    exe = REPO / ".venv" / "bin" / "encoderlab"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "encoderlab"]
    proc = subprocess.run(cmd + ["serve", str(tmp_path), "--backend", "onnx", "--precision", "bf16"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("error: --precision is for the torch backend; the onnx backend runs fp32, "
                                   "or int8 with --int8")


@pytest.mark.timeout(60)
def test_auto_on_a_machine_with_a_gpu_picks_by_the_device(monkeypatch):
    """A model kept on the CPU of a GPU machine gets the CPU's precision, not the GPU's."""
    import torch

    import encoderlab.training as training

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: False)
    assert training.resolve_precision("auto") == "fp16"
    assert training.resolve_precision("auto", "cuda") == "fp16"
    assert training.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: True)
    assert training.resolve_precision("auto", "cpu") == "bf16"
    assert training.resolve_precision("fp32", "cpu") == "fp32"


@pytest.mark.timeout(120)
def test_the_shared_loop_resolves_auto(monkeypatch, tiny_qa_run):
    """`predict_dataset` (compare, robustness) passes its default "auto" down to the one evaluation loop, which
    resolves it: bf16 autocast on a CPU fast at it, fp32 elsewhere."""
    import encoderlab.training as training
    from encoderlab.data.squad import load_squad, select
    from encoderlab.qa.predict import load_qa_model, predict_dataset

    resolved, _ = load_qa_model(str(tiny_qa_run[0] / "model"))
    ds = select(load_squad("builtin:squad-sample"), part="test", limit=12)

    def scores(**kw):
        out = predict_dataset(resolved.model, resolved.tokenizer, ds, show_progress=False, **kw)
        return np.array([[c.start_logit for c in p.candidates[:3]] for p in out.details])

    explicit = {p: scores(precision=p) for p in ("fp32", "bf16")}
    assert np.abs(explicit["fp32"] - explicit["bf16"]).max() > 1e-4
    for fast, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda fast=fast: fast)
        np.testing.assert_array_equal(scores(), explicit[expected])


@pytest.mark.timeout(120)
def test_compare_and_robustness_predict_at_the_precision_asked(monkeypatch, capsys, tiny_qa_run):
    import encoderlab.analysis.compare as compare
    import encoderlab.analysis.robustness as robustness

    asked = []
    real = compare.predict_dataset

    def spy(*args, precision="auto", **kwargs):
        asked.append(precision)
        return real(*args, precision=precision, **kwargs)

    monkeypatch.setattr(compare, "predict_dataset", spy)
    monkeypatch.setattr(robustness, "predict_dataset", spy)
    model = tiny_qa_run[0] / "model"
    for precision in ("fp32", "bf16"):
        code, _, err = run_cli(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                               "--limit", "8", "--json", "--precision", precision)
        assert code == 0, err
        code, _, err = run_cli(capsys, "robustness", model, "--data", "a=builtin:squad-sample",
                               "--data", "b=builtin:squad-sample", "--part", "test", "--limit", "8", "--json",
                               "--precision", precision)
        assert code == 0, err
    assert asked == ["fp32"] * 4 + ["bf16"] * 4

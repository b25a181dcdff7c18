"""Engine pieces that need no model: precision resolution, log formatting, memory trimming."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from encoderlab.errors import EncoderlabError
from encoderlab.training import MemoryTrimCallback, format_log, glibc_malloc_trim, resolve_precision


def test_precision_choices():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") in ("fp32", "bf16", "fp16")
    with pytest.raises(EncoderlabError, match="precision must be"):
        resolve_precision("int4")


def test_memory_trim_every_n_steps_and_after_evaluation():
    calls = []
    cb = MemoryTrimCallback(lambda pad: calls.append(pad) or 1, every=3)
    for step in range(1, 10):
        cb.on_step_end(None, SimpleNamespace(global_step=step), None)
    assert calls == [0, 0, 0]                  # steps 3, 6, 9
    cb.on_evaluate(None, None, None)
    assert len(calls) == 4


def test_glibc_trim_is_callable_here():
    trim = glibc_malloc_trim()
    if trim is None:
        pytest.skip("not a glibc system")
    assert trim(0) in (0, 1)


def test_log_lines_are_readable():
    line = format_log(10, 100, {"loss": 2.5, "learning_rate": 3e-5, "epoch": 0.5})
    assert line == "step 10/100: loss 2.5 · learning_rate 3e-05 · epoch 0.5"
    evals = format_log(20, 100, {"eval_exact": 50.0, "eval_f1": 60.5, "eval_missing": 0, "eval_runtime": 3.2})
    assert evals == "eval @ step 20: exact 50 · f1 60.5"


def test_report_to_trackers_are_optional_and_checked(monkeypatch):
    from encoderlab.errors import EncoderlabError
    from encoderlab.training import tracker_integrations

    assert tracker_integrations(None) == [] and tracker_integrations([]) == []
    with pytest.raises(EncoderlabError, match="unknown tracker 'wandbx'"):
        tracker_integrations(["wandbx"])
    monkeypatch.setattr("transformers.integrations.get_available_reporting_integrations", lambda: ["tensorboard"])
    assert tracker_integrations("tensorboard") == ["tensorboard"]
    with pytest.raises(EncoderlabError, match="'mlflow' is not installed"):
        tracker_integrations(["mlflow"])


def test_step_evaluator_runs_once_per_step_and_forgets_after_a_reload():
    from types import SimpleNamespace

    from encoderlab.training import StepEvaluator, fit

    calls = []
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=10), args=SimpleNamespace(load_best_model_at_end=True))

    def evaluate(t):
        calls.append(t.state.global_step)
        return {"f1": float(len(calls))}, f"output {len(calls)}"

    ev = StepEvaluator(evaluate)
    assert ev(trainer) == {"f1": 1.0} and ev(trainer) == {"f1": 1.0} and ev.output == "output 1"   # cached
    trainer.state.global_step = 20
    assert ev(trainer) == {"f1": 2.0}
    trainer.train = lambda resume_from_checkpoint=None: ("result", resume_from_checkpoint)
    result, final = fit(trainer, ev, "ckpt")          # the best checkpoint was reloaded: evaluated afresh
    assert result == ("result", "ckpt") and final == {"f1": 3.0} and calls == [10, 20, 20]
    trainer.args.load_best_model_at_end = False
    assert fit(trainer, ev, None)[1] == {"f1": 3.0} and calls == [10, 20, 20]    # same step: reused

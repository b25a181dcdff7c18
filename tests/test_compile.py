"""`--compile auto|on|off`: option checks, the auto choice, and the eager fallback when torch.compile fails."""
from __future__ import annotations

import pytest
import torch

from encoderlab import training
from encoderlab.config import TrainConfig, build_config
from encoderlab.errors import EncoderlabError


@pytest.mark.timeout(30)
def test_compile_option_values_are_checked(tmp_path):
    assert TrainConfig().compile == "auto"
    for ok in ("auto", "on", "off"):
        build_config(TrainConfig, None, {"compile": ok}).validate()
    with pytest.raises(EncoderlabError, match=r"compile \(--compile\) must be auto, on, off, not 'fast'"):
        build_config(TrainConfig, None, {"compile": "fast"}).validate()
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("compile: off\n")             # YAML 1.1: an unquoted off is false
    with pytest.raises(EncoderlabError, match=r'option compile: expected a text value, got False \(quote on/off'):
        build_config(TrainConfig, cfg_file, {})
    cfg_file.write_text('compile: "off"\n')
    assert build_config(TrainConfig, cfg_file, {}).compile == "off"


@pytest.mark.timeout(30)
def test_auto_compiles_only_where_measured_faster(monkeypatch):
    assert training.resolve_compile("auto", "cpu") is False          # measured slower on CPUs
    assert training.resolve_compile("on", "cpu") is True and training.resolve_compile("off", "cuda") is False
    monkeypatch.setattr(training, "COMPILE_FASTER_ON", frozenset({"cuda"}))
    assert training.resolve_compile("auto", "cuda") is True and training.resolve_compile("auto", "cpu") is False
    with pytest.raises(EncoderlabError, match="compile must be auto, on, off"):
        training.resolve_compile("yes", "cpu")


def _tiny():
    from encoderlab.models import load_model

    return load_model("scratch:bert-tiny", "qa", seed=0)


def _tiny_eager_logits():
    """A tiny QA model in eval mode, one input, and its eager start logits (what a compile fallback must give)."""
    model = _tiny().model.eval()
    x = {"input_ids": torch.tensor([[101, 2054, 102, 2003, 102]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    with torch.no_grad():
        return model, x, model(**x).start_logits


@pytest.mark.timeout(60)
def test_a_failing_compile_warns_once_and_runs_eager(monkeypatch):
    model, x, before = _tiny_eager_logits()

    def broken(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler found\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    lines = []
    assert training.compile_model(model, log=lines.append) is False
    assert lines == ["warning: torch.compile failed (inductor: no C++ compiler found); running eager"]
    with torch.no_grad():
        assert torch.equal(model(**x).start_logits, before)


@pytest.mark.timeout(60)
def test_compile_on_compiles_the_trainers_model_in_place(tmp_path, monkeypatch):
    import datasets

    from encoderlab.runs import RunDir

    calls = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(kw) or fn)   # no real compilation
    resolved = _tiny()
    ds = datasets.Dataset.from_dict({"input_ids": [[101, 102]], "attention_mask": [[1, 1]], "length": [2]})
    for choice, compiled in (("off", False), ("auto", False), ("on", True)):
        calls.clear()
        cfg = TrainConfig(model="scratch:bert-tiny", output_dir=str(tmp_path / choice), max_steps=1, compile=choice)
        run = RunDir(cfg.output_dir)
        run.path.mkdir(parents=True)
        trainer = training.make_trainer(model=resolved.model, tokenizer=resolved.tokenizer, cfg=cfg, run=run,
                                        train_dataset=ds, collator=training.DynamicPadCollator(resolved.tokenizer),
                                        evaluator=None, metric="f1", greater_is_better=True)
        assert trainer.model is resolved.model                        # the same module: saving is unchanged
        assert calls == ([{"dynamic": True}] if compiled else []), choice


@pytest.mark.timeout(120)
def test_a_graph_that_fails_later_runs_eager_and_leaves_the_process_setting_alone(monkeypatch):
    import torch._dynamo

    model, x, before = _tiny_eager_logits()

    def failing_backend(gm, example_inputs):           # the compiler fails at the first call, not at compile()
        raise RuntimeError("backend failed")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend=failing_backend, **kw))
    assert torch._dynamo.config.suppress_errors is False
    torch._dynamo.reset()
    try:
        assert training.compile_model(model, log=print) is True
        assert torch._dynamo.config.suppress_errors is False          # not turned on for the whole process
        with torch.no_grad():
            after = model(**x).start_logits                         # the failed graph ran eager
        assert torch.equal(after, before)
        assert torch._dynamo.config.suppress_errors is False
    finally:
        torch._dynamo.reset()

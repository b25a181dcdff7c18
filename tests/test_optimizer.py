"""The engine's AdamW: the fastest implementation that works (fused, else foreach), numerically Trainer's."""
from __future__ import annotations

import pytest
import torch

from encoderlab import training


def _tiny_trainer(tmp_path, **options):
    """The engine's Trainer over a scratch BERT-tiny QA model (2 layers) and a one-row data set."""
    import datasets

    from encoderlab.models import load_model
    from encoderlab.runs import RunDir
    from encoderlab.training import DynamicPadCollator, TrainConfig, make_trainer

    resolved = load_model("scratch:bert-tiny", "qa", seed=0)
    cfg = TrainConfig(model="scratch:bert-tiny", output_dir=str(tmp_path / "run"), precision="fp32", **options)
    run = RunDir(cfg.output_dir)
    run.path.mkdir(parents=True)
    ds = datasets.Dataset.from_dict({"input_ids": [[101, 102]], "attention_mask": [[1, 1]], "length": [2]})
    trainer = make_trainer(model=resolved.model, tokenizer=resolved.tokenizer, cfg=cfg, run=run, train_dataset=ds,
                           collator=DynamicPadCollator(resolved.tokenizer), evaluator=None, metric="f1",
                           greater_is_better=True)
    return trainer, cfg, resolved.model


@pytest.mark.timeout(30)
def test_fused_adamw_matches_the_reference_for_loop_update():
    torch.manual_seed(0)
    start = torch.randn(64, 33)
    grads = [torch.randn(64, 33) for _ in range(5)]
    results = {}
    for kind in ("for-loop", "foreach", "fused"):
        param = torch.nn.Parameter(start.clone())
        opts = {} if kind == "for-loop" else {kind: True}
        if kind == "for-loop":
            opts["foreach"] = False
        opt = torch.optim.AdamW([param], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, **opts)
        for g in grads:
            param.grad = g.clone()
            opt.step()
        results[kind] = param.detach()
    assert not torch.equal(results["for-loop"], start)                    # the steps did move the weights
    assert (results["fused"] - results["for-loop"]).abs().max().item() < 1e-6
    assert (results["foreach"] - results["for-loop"]).abs().max().item() < 1e-6


@pytest.mark.timeout(30)
def test_adamw_kind_falls_back_from_fused_to_foreach(monkeypatch):
    real = torch.optim.AdamW

    class NoFused(real):
        def __init__(self, params, *args, fused=None, **kwargs):
            if fused:
                raise RuntimeError("fused=True requires all the params to be floating point Tensors of supported devices")
            super().__init__(params, *args, **kwargs)

    monkeypatch.setattr(training, "_adamw_kind_cache", {})
    monkeypatch.setattr(torch.optim, "AdamW", NoFused)
    assert training.adamw_kind("cpu") == "foreach" and training.adamw_options("cpu") == {"foreach": True}


@pytest.mark.timeout(120)
def test_engine_builds_the_fused_adamw_with_trainers_settings(tmp_path, monkeypatch):
    trainer, _, _ = _tiny_trainer(tmp_path, learning_rate=3e-4, weight_decay=0.05, max_steps=1)
    opt = trainer.create_optimizer()
    assert type(opt) is torch.optim.AdamW
    assert training.adamw_kind("cpu") == "fused"              # torch >= 2.4 has the fused CPU kernel
    assert opt.defaults["fused"] is True and not opt.defaults["foreach"]
    assert opt.defaults["lr"] == pytest.approx(3e-4)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.05]   # Trainer's decay groups kept

    # the fallback reaches the Trainer too
    trainer.optimizer = None
    monkeypatch.setattr(training, "_adamw_kind_cache", {"cpu": "foreach"})
    opt = trainer.create_optimizer()
    assert opt.defaults["foreach"] is True and not opt.defaults["fused"]


@pytest.mark.timeout(120)
def test_layerwise_lr_decay_gives_each_layer_its_rate_and_the_schedule_scales_them(tmp_path):
    trainer, cfg, model = _tiny_trainer(tmp_path, learning_rate=1e-3, weight_decay=0.05, max_steps=10,    # 2 layers
                                        warmup_ratio=0.0, layerwise_lr_decay=0.5)
    opt = trainer.create_optimizer()
    rate = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(rate) == len(named)                                        # every parameter exactly once
    expect = {"bert.embeddings.word_embeddings.weight": (1e-3 * 0.5 ** 3, 0.05),
              "bert.embeddings.LayerNorm.weight": (1e-3 * 0.5 ** 3, 0.0),
              "bert.encoder.layer.0.attention.self.query.weight": (1e-3 * 0.5 ** 2, 0.05),
              "bert.encoder.layer.0.attention.self.query.bias": (1e-3 * 0.5 ** 2, 0.0),
              "bert.encoder.layer.1.output.dense.weight": (1e-3 * 0.5, 0.05),
              "qa_outputs.weight": (1e-3, 0.05), "qa_outputs.bias": (1e-3, 0.0)}
    for name, (lr, wd) in expect.items():
        assert rate[id(named[name])] == (pytest.approx(lr), wd), name
    # the schedule (linear decay, no warm-up) multiplies every group's own rate by the same factor
    trainer.create_scheduler(num_training_steps=10, optimizer=opt)
    for _ in range(5):
        opt.step()
        trainer.lr_scheduler.step()
    assert trainer._get_learning_rate() == pytest.approx(0.5 * 1e-3)     # the logged rate: the head's
    assert sorted({round(g["lr"], 12) for g in opt.param_groups}) == pytest.approx(
        [0.5 * 1e-3 * 0.5 ** 3, 0.5 * 1e-3 * 0.5 ** 2, 0.5 * 1e-3 * 0.5, 0.5 * 1e-3])

    # off (1.0): Trainer's own two groups at the one rate
    trainer.optimizer = None
    cfg.layerwise_lr_decay = 1.0
    opt = trainer.create_optimizer()
    assert len(opt.param_groups) == 2 and {g["lr"] for g in opt.param_groups} == {1e-3}

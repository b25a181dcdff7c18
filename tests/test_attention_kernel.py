"""The attention kernel of a training step: bf16 on a CPU without attention dropout takes the math kernel below
MATH_ATTENTION_BELOW padded tokens (PyTorch's fused flash kernel's backward is slow there); fp32, longer batches,
attention dropout, GPUs and the evaluation loop keep PyTorch's own choice."""
from __future__ import annotations

import pytest
import torch
from _helpers import tiny_qa_model
from torch.profiler import ProfilerActivity, profile

from encoderlab.training import MATH_ATTENTION_BELOW, attention_dropout, set_dropout, training_attention_kernel

FLASH = "aten::_scaled_dot_product_flash_attention_for_cpu"
MATH = "aten::_scaled_dot_product_attention_math"


def attention_ops(fn) -> set[str]:
    """The scaled-dot-product-attention kernels `fn` ran."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages() if e.key in (FLASH, MATH)}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("length, precision, device, dropout, math_only", [
    (32, "bf16", "cpu", 0.0, True), (MATH_ATTENTION_BELOW - 1, "bf16", "cpu", 0.0, True),
    (MATH_ATTENTION_BELOW, "bf16", "cpu", 0.0, False), (384, "bf16", "cpu", 0.0, False),
    (32, "fp32", "cpu", 0.0, False), (32, "bf16", "cuda", 0.0, False), (32, "bf16", "cpu", 0.1, False),
])
def test_the_rule(length, precision, device, dropout, math_only):
    with training_attention_kernel(length, precision, device, dropout):
        assert torch.backends.cuda.flash_sdp_enabled() is not math_only
        assert torch.backends.cuda.math_sdp_enabled()
    assert torch.backends.cuda.flash_sdp_enabled()          # restored on leaving


@pytest.mark.timeout(60)
def test_the_math_kernel_trains_the_same_model():
    """Under the rule's context the step runs the math kernel (the default one otherwise) and computes the same
    loss and gradients, to bf16's rounding."""
    model = tiny_qa_model("bert")
    assert model.config._attn_implementation == "sdpa"
    set_dropout(model, 0.0)
    model.train()
    ids = torch.randint(5, 100, (4, 48), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[:2, 40:] = 0                          # padded rows, as the dynamic-padding collator makes them
    batch = {"input_ids": ids, "attention_mask": mask, "start_positions": torch.tensor([1, 2, 3, 4]),
             "end_positions": torch.tensor([2, 3, 4, 5])}
    results = {}
    for length in (48, MATH_ATTENTION_BELOW):  # the rule's decision for a short and a long batch; the same batch
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16), training_attention_kernel(length, "bf16", "cpu", 0.0):
                loss = model(**batch).loss
            loss.backward()
            results[length] = (loss.detach().float(), model.qa_outputs.weight.grad.clone())
            model.zero_grad(set_to_none=True)

        assert attention_ops(step) == ({MATH} if length < MATH_ATTENTION_BELOW else {FLASH})
    (loss_math, grad_math), (loss_flash, grad_flash) = results.values()
    torch.testing.assert_close(loss_math, loss_flash, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(grad_math, grad_flash, atol=2e-2, rtol=5e-2)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("precision, attention, flash_expected", [("bf16", 0.0, False), ("bf16", 0.1, True),
                                                                  ("fp32", 0.0, True)])
def test_training_steps_take_the_rules_kernel_and_evaluation_the_default(tmp_path, monkeypatch, precision,
                                                                         attention, flash_expected):
    """`train qa`'s steps run in the rule's context for their batch length, precision and attention dropout
    (--attention-dropout); its evaluation forward passes keep PyTorch's choice (the fused forward is faster)."""
    import encoderlab.training as training
    from encoderlab.qa.train import QATrainConfig, train_qa

    from contextlib import contextmanager

    calls, seen, in_step = [], [], [False]
    real = training.training_attention_kernel

    @contextmanager
    def spy(length, prec, device_type="cpu", dropout=0.0):
        calls.append((prec, device_type, dropout))
        in_step[0] = True
        with real(length, prec, device_type, dropout):
            yield
        in_step[0] = False

    monkeypatch.setattr(training, "training_attention_kernel", spy)
    original = torch.nn.functional.scaled_dot_product_attention

    def sdpa(*args, **kwargs):       # at each attention call: in a training step? may PyTorch take flash?
        seen.append((in_step[0], torch.backends.cuda.flash_sdp_enabled()))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", sdpa)
    cfg = QATrainConfig(model="scratch:bert-tiny", output_dir=str(tmp_path / "run"), train="builtin:squad-sample",
                        train_split="train", eval_split="test", limit=32, eval_limit=8, max_steps=3,
                        logging_steps=1, train_batch_size=4, max_seq_length=128, doc_stride=32,
                        precision=precision, attention_dropout=attention, learning_rate=1e-3)
    train_qa(cfg, log=lambda m: None)
    assert calls == [(precision, "cpu", attention)] * 3            # one per step; none from the evaluation
    assert {allowed for step, allowed in seen if step} == {flash_expected}
    assert {allowed for step, allowed in seen if not step} == {True}          # the evaluation's forward passes


@pytest.mark.timeout(30)
def test_attention_dropout_reads_the_attention_layers_only():
    from encoderlab.models import load_model

    model = load_model("scratch:bert-tiny", "qa").model
    assert attention_dropout(model) == pytest.approx(0.1)
    set_dropout(model, 0.3, attention=0.0)
    assert attention_dropout(model) == 0.0
    set_dropout(model, 0.0, attention=0.25)
    assert attention_dropout(model) == pytest.approx(0.25)


@pytest.mark.timeout(60)
def test_the_math_kernel_is_at_least_as_accurate_in_bf16():
    """Against float64 attention: the math kernel (which computes in fp32 from bf16 inputs) errs no more than the
    fused one in the forward pass and less in the gradients, so the rule trades no accuracy for its speed."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    gen = torch.Generator().manual_seed(0)
    # the same bf16 inputs for every kernel and the reference: the differences are the kernels' arithmetic
    q, k, v = ((torch.randn(4, 12, 150, 32, generator=gen) * 2).bfloat16().float() for _ in range(3))
    leaves = [x.double().requires_grad_() for x in (q, k, v)]
    F.scaled_dot_product_attention(*leaves).pow(2).sum().backward()
    ref_grad = leaves[0].grad
    ref_out = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    errors = {}
    for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
        inputs = [x.bfloat16().requires_grad_() for x in (q, k, v)]
        with sdpa_kernel([backend]):
            out = F.scaled_dot_product_attention(*inputs)
        out.float().pow(2).sum().backward()
        errors[backend] = ((out.double() - ref_out).abs().mean().item(),
                           ((inputs[0].grad.double() - ref_grad).abs().mean() / ref_grad.abs().mean()).item())
    (math_out, math_grad), (flash_out, flash_grad) = errors[SDPBackend.MATH], errors[SDPBackend.FLASH_ATTENTION]
    assert math_out <= flash_out * 1.25 and math_out < 1e-2
    assert math_grad < flash_grad and math_grad < 5e-3

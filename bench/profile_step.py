"""Where the time goes: one QA training step and one inference batch, by operator class (torch.profiler).

    python bench/profile_step.py [--model builtin:minilm-l6] [--batch-size 16] [--eval-batch-size 64]
                                 [--max-seq-length 384] [--warmup 2] [--dropout P] [--no-docs]

Builds QA features of the bundled SQuAD sample (the run's windows), then times, after `--warmup`
untimed steps: the collation of a batch of `--batch-size` features (data), forward + backward under
torch.profiler, `optimizer.step()` (AdamW, the engine's implementation: fused where it works) under its own profiler, and one inference
batch of `--eval-batch-size` features (collation + forward in inference mode). Operator self times
are grouped into matmul (aten::mm / addmm / bmm / linear / matmul), attention (scaled dot-product
attention, softmax, baddbmm), dropout masks (the random numbers of `bernoulli_`), elementwise / norms (add,
mul, gelu, layer_norm, applying dropout, copies…) and other operators; Python overhead is the wall time
minus the profiled operator time. Also measures 2048 x 2048 fp32 and bf16 matmul GFLOP/s in the same run.
Prints a table and appends it to docs/performance.md (machine, commit, command) unless `--no-docs`.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section, matmul_gflops  # noqa: E402

CLASSES = ("matmul", "attention", "dropout masks (random numbers)", "elementwise / norms", "other operators")
_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul", "aten::_mkldnn", "aten::mkldnn_")
_ATTENTION = ("scaled_dot_product", "softmax", "aten::baddbmm", "_flash_attention", "_efficient_attention")
_ELEMENTWISE = ("add", "mul", "div", "sub", "gelu", "layer_norm", "dropout", "copy_", "to_copy", "tanh", "where",
                "masked_fill", "fill_", "zero_", "sum", "mean", "embedding", "clone", "contiguous", "neg", "exp",
                "sqrt", "rsqrt", "pow", "clamp", "cat", "index", "gather", "scatter", "nll_loss", "log_softmax")


def op_class(name: str) -> str:
    if any(k in name for k in _ATTENTION):
        return "attention"
    if name.startswith(_MATMUL):
        return "matmul"
    if "bernoulli" in name:
        return "dropout masks (random numbers)"
    if name.startswith("aten::") and any(k in name[6:] for k in _ELEMENTWISE):
        return "elementwise / norms"
    return "other operators"


def profiled(fn) -> tuple[float, dict[str, float]]:
    """(wall seconds of fn(), {operator class: self CPU seconds}) of one call under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    by_class = dict.fromkeys(CLASSES, 0.0)
    for event in prof.key_averages():
        if event.key.startswith("ProfilerStep") or event.key == "[memory]":
            continue
        by_class[op_class(event.key)] += event.self_cpu_time_total / 1e6
    return wall, by_class


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--eval-batch-size", type=int, default=None, help="Features of the profiled inference batch "
                    "(default: config.INFERENCE_BATCH_SIZE, what evaluation and `ask` use).")
    ap.add_argument("--max-seq-length", type=int, default=384)
    ap.add_argument("--warmup", type=int, default=2, help="Untimed training steps before the profiled one.")
    ap.add_argument("--dropout", type=float, default=None, help="Every dropout layer at this probability "
                    "(`--dropout` of train; default: the model's own, with its recipe's attention dropout, as "
                    "`train qa` trains it).")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch

    from encoderlab.config import INFERENCE_BATCH_SIZE
    from encoderlab.data.squad import load_squad
    from encoderlab.models import load_model
    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.training import DynamicPadCollator, adamw_kind, adamw_options, resolve_precision, set_dropout

    precision = resolve_precision("auto")
    resolved = load_model(args.model, "qa", seed=0)
    model, tok = resolved.model, resolved.tokenizer
    from encoderlab.qa.config import QATrainConfig

    recipe_attention = QATrainConfig.MODEL_DEFAULTS.get(args.model, {}).get("attention_dropout")
    if args.dropout is not None:
        set_dropout(model, args.dropout)
    elif recipe_attention is not None:
        set_dropout(model, None, attention=recipe_attention)
    if args.eval_batch_size is None:
        args.eval_batch_size = INFERENCE_BATCH_SIZE
    data = load_squad("builtin:squad-sample")
    feats = make_features(data.examples, tok, QAFeatureConfig(args.max_seq_length, min(128, args.max_seq_length // 3)))
    cols = feats.model_inputs(with_labels=True)
    rows = [{k: cols[k][i] for k in cols} for i in range(len(cols["input_ids"]))]
    collator = DynamicPadCollator(tok)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, **adamw_options("cpu"))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
    model.train()

    def forward_backward(batch):
        with autocast:
            loss = model(**batch).loss
        loss.backward()

    b = args.batch_size
    for i in range(args.warmup):                       # warm-up: allocator, one-off initialisation
        forward_backward(collator(rows[i * b:(i + 1) * b]))
        optimizer.step()
        optimizer.zero_grad()
    step_rows = rows[args.warmup * b:(args.warmup + 1) * b]
    t0 = time.perf_counter()
    batch = collator(step_rows)
    data_s = time.perf_counter() - t0
    tokens = int(batch["attention_mask"].sum())
    fb_wall, fb = profiled(lambda: forward_backward(batch))
    opt_wall, _ = profiled(optimizer.step)
    optimizer.zero_grad()

    model.eval()
    eval_rows = rows[:args.eval_batch_size]
    t0 = time.perf_counter()
    eval_batch = collator([{k: v for k, v in r.items() if k not in ("start_positions", "end_positions")}
                           for r in eval_rows])
    eval_data_s = time.perf_counter() - t0

    def infer():
        with torch.inference_mode(), autocast:
            model(**eval_batch)

    infer()                                            # warm-up
    inf_wall, inf = profiled(infer)

    train = {**{k: fb[k] for k in CLASSES}, "optimizer (AdamW step)": opt_wall, "data (collation)": data_s,
             "Python overhead": max(fb_wall - sum(fb.values()), 0.0)}
    infer_cols = {**{k: inf[k] for k in CLASSES}, "optimizer (AdamW step)": 0.0, "data (collation)": eval_data_s,
                  "Python overhead": max(inf_wall - sum(inf.values()), 0.0)}
    train_total, infer_total = sum(train.values()), sum(infer_cols.values())
    lines = [f"| class | training step (batch {b}, {tokens:,} tokens) | share | inference batch "
             f"({len(eval_rows)} features) | share |", "|---|---:|---:|---:|---:|"]
    for name in train:
        lines.append(f"| {name} | {train[name] * 1e3:,.0f} ms | {100 * train[name] / train_total:.1f} % | "
                     f"{infer_cols[name] * 1e3:,.0f} ms | {100 * infer_cols[name] / infer_total:.1f} % |")
    lines.append(f"| **total** | **{train_total * 1e3:,.0f} ms** | | **{infer_total * 1e3:,.0f} ms** | |")
    fp32, bf16 = matmul_gflops("float32"), matmul_gflops("bfloat16")
    table = "\n".join(lines)
    dropout_text = (f"{args.dropout:g} (--dropout)" if args.dropout is not None else
                    f"the model's own, attention dropout {recipe_attention:g} (its recipe's)"
                    if recipe_attention is not None else "the model's own")
    body = (f"{args.model} ({resolved.num_parameters / 1e6:.1f} M parameters), QA windows of {args.max_seq_length} "
            f"tokens, precision {precision}, dropout {dropout_text}, {adamw_kind('cpu')} AdamW, "
            f"{torch.get_num_threads()} threads.\n\n{table}\n\n"
            f"2048 x 2048 matmul in the same run: fp32 {fp32:,.1f} GFLOP/s, bf16 {bf16:,.1f} GFLOP/s.\n")
    print(body)
    if not args.no_docs:
        append_section("One QA training step and one inference batch by operator class", body, doc="performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

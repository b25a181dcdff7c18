"""QA inference throughput by precision and batch size: what `evaluate --model`, `ask`, `compare` and the
Python API run (`training.predict_in_order`: longest-first batches, dynamic padding), as a fraction of the
matmul peak measured in the same run.

    python bench/bench_inference.py [--features 512] [--rounds 3] [--batch-sizes 16,32,64] [--no-docs]

The first `--features` windows (384 tokens, stride 128, as the 30-minute recipe trains) of the `train` half
of SQuAD v1.1 dev (the bundled sample when the shared data is absent), predicted by `--model` with a QA head
(untrained: speed does not depend on the weights' values) in fp32 and, where the CPU is fast at it, bf16
autocast, at each batch size; rounds interleave every configuration and measure the 2048 x 2048 matmul peak
first; medians. Useful FLOPs per non-pad token: 2 x non-embedding parameters + 4 x layers x hidden x mean
length. The default inference batch, `config.INFERENCE_BATCH_SIZE`, is chosen from this table.

    python bench/bench_inference.py --quality-model RUN/model

instead scores a fine-tuned QA model on the validation carve-out of the `train` half (10 % of its articles,
as `train qa --validation-fraction 0.1` holds out; never the `test` half) in fp32 and in bf16 autocast, in
`INFERENCE_BATCH_SIZE` batches: EM/F1, seconds (best of 2) and how many answers differ.
Appends a section to docs/benchmarks.md unless --no-docs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section, matmul_gflops  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--features", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-sizes", default="16,32,64")
    ap.add_argument("--quality-model", help="A fine-tuned QA model: compare fp32 and bf16 answers instead.")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    if args.quality_model:
        return quality(args)

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.config import INFERENCE_BATCH_SIZE
    from encoderlab.data.squad import load_squad, select
    from encoderlab.models import load_model
    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.training import DynamicPadCollator, cpu_has_fast_bf16, predict_in_order

    sizes = [int(b) for b in args.batch_sizes.split(",")]
    data = (select(load_squad(SQUAD_DEV), split_file=SQUAD_SPLIT, part="train") if SQUAD_DEV.exists()
            else load_squad("builtin:squad-sample"))
    resolved = load_model(args.model, "qa", seed=0)
    model, tok, config = resolved.model.eval(), resolved.tokenizer, resolved.model.config
    feats = make_features(data.examples[: 2 * args.features], tok, QAFeatureConfig(384, 128))
    cols = {k: v[: args.features] for k, v in feats.model_inputs(with_labels=False).items()}
    lengths = feats.lengths[: args.features]
    n = len(lengths)
    embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" in name)
    n_matmul = resolved.num_parameters - embedding
    flops = float(lengths.sum()) * (2 * n_matmul + 4 * config.num_hidden_layers * config.hidden_size
                                    * float(lengths.mean()))
    precisions = ["fp32"] + (["bf16"] if cpu_has_fast_bf16() else [])
    print(f"{n} windows, mean {lengths.mean():.0f} tokens; {flops / 1e9:.0f} useful GFLOP per pass; "
          f"precisions {', '.join(precisions)}; batch sizes {sizes}")

    def run(precision: str, batch_size: int) -> float:
        t = time.perf_counter()
        predict_in_order(model, cols, DynamicPadCollator(tok), batch_size=batch_size, device=torch.device("cpu"),
                         precision=precision, outputs=("start_logits", "end_logits"), show_progress=False)
        return time.perf_counter() - t

    run(precisions[-1], sizes[0])                                   # warm-up
    seconds: dict[tuple[str, int], list[float]] = {}
    peaks: dict[str, list[float]] = {p: [] for p in precisions}
    for r in range(args.rounds):
        for p in precisions:
            peaks[p].append(matmul_gflops("float32" if p == "fp32" else "bfloat16"))
        for p in precisions:
            for b in sizes:
                seconds.setdefault((p, b), []).append(run(p, b))
                print(f"round {r + 1}: {p} batch {b}: {n / seconds[(p, b)][-1]:.1f} windows/s", flush=True)
    peak = {p: statistics.median(v) for p, v in peaks.items()}
    top = peak[precisions[-1]]
    rows = []
    for (p, b), secs in seconds.items():
        s = statistics.median(secs)
        gflops = flops / s / 1e9
        rows.append(f"| {p} | {b}{' (default)' if b == INFERENCE_BATCH_SIZE else ''} | {n / s:.1f} | {gflops:.1f} | "
                    f"{100 * gflops / peak[p]:.1f} % | {100 * gflops / top:.1f} % |")
    peak_text = ", ".join(f"{p} {v:.1f} GFLOP/s" for p, v in peak.items())
    body = f"""
- model `{args.model}` with a QA head; {n} windows of the SQuAD v1.1 dev `train` half (384 tokens, stride 128,
  mean {lengths.mean():.0f} non-pad tokens); `training.predict_in_order` (longest-first batches, dynamic padding);
  {args.rounds} interleaved rounds, medians
- 2048 x 2048 matmul peak in the same run: {peak_text}; useful FLOPs per non-pad token 2 x {n_matmul / 1e6:.1f} M
  non-embedding parameters + 4 x layers x hidden x mean length ({flops / 1e9:.0f} GFLOP a pass)

| precision | batch | windows/s | useful GFLOP/s | of its precision's peak | of the {precisions[-1]} peak |
|---|---:|---:|---:|---:|---:|
""" + "\n".join(rows)
    print(body)
    if not args.no_docs:
        append_section("QA inference throughput by precision and batch size", body)
    return 0


def quality(args) -> int:
    from encoderlab.config import INFERENCE_BATCH_SIZE
    from encoderlab.data.squad import carve_validation, load_squad, select
    from encoderlab.qa.evaluate import score_predictions
    from encoderlab.qa.predict import load_qa_model, predict_dataset

    half = select(load_squad(SQUAD_DEV), split_file=SQUAD_SPLIT, part="train")
    _, validation = carve_validation(half, 0.1, 42)
    resolved, _ = load_qa_model(args.quality_model)
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    results = {}
    for _ in range(2):
        for p in seconds:
            t = time.perf_counter()
            results[p] = predict_dataset(resolved.model, resolved.tokenizer, validation, precision=p,
                                         show_progress=False).predictions
            seconds[p].append(time.perf_counter() - t)
    rows = []
    for p, preds in results.items():
        m = score_predictions(validation.gold(), preds)
        rows.append(f"| {p} | {m['exact']:.2f} | {m['f1']:.2f} | {min(seconds[p]):.1f} |")
    differ = sum(results["fp32"][k] != results["bf16"][k] for k in results["fp32"])
    body = f"""
- model `{args.quality_model}`; the validation carve-out of the SQuAD v1.1 dev `train` half ({len(validation)}
  questions, `carve_validation(train half, 0.1, seed 42)`); `predict_dataset` in batches of {INFERENCE_BATCH_SIZE},
  the model's own windows; seconds: best of 2 (tokenization, forward passes and postprocessing)

| precision | EM | F1 | seconds |
|---|---:|---:|---:|
""" + "\n".join(rows) + f"""

{differ} of {len(validation)} answers differ; bf16 takes {min(seconds["bf16"]) / min(seconds["fp32"]):.2f}x the
seconds of fp32."""
    print(body)
    if not args.no_docs:
        append_section("QA inference: fp32 vs bf16 answers of one fine-tuned model", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

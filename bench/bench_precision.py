"""bf16 against fp32: the same fine-tuning, the same steps, in each precision; F1 and minutes side by side.

    python bench/bench_precision.py [--steps 300] [--precisions fp32,bf16] [--base recipes/minilm-squad-30min/base.yaml]

Each precision fine-tunes `builtin:minilm-l6` with the settings of the recipe sweep's `base.yaml` (the `train`
half of SQuAD v1.1 dev, windows of 384/128, batch 16, the model's other defaults) for exactly `--steps` steps
(no time budget: both precisions see the same batches in the same order from the same seed) and scores the
validation carve-out of the `train` half once at the end; the `test` half is never read. `--precision bf16` is
mixed precision (autocast; weights, gradients and AdamW state stay fp32). The runs are sequential on the same
machine, so their minutes compare; the matmul peaks of both precisions are measured in the same run. Prints a
table and appends it to docs/benchmarks.md unless `--no-docs`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SQUAD_DEV, SQUAD_SPLIT, append_section, matmul_gflops, require_shared_data  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=str(REPO / "recipes" / "minilm-squad-30min" / "base.yaml"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--out-dir", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    require_shared_data()

    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.config import build_config
    from encoderlab.qa.train import QATrainConfig, train_qa
    from encoderlab.training import resolve_precision

    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="bench-precision-"))
    peaks = {"fp32": matmul_gflops("float32"), "bf16": matmul_gflops("bfloat16")}
    results = {}
    cfg = None
    for precision in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        cfg = build_config(QATrainConfig, Path(args.base), {
            "train": str(SQUAD_DEV), "split_file": str(SQUAD_SPLIT), "max_steps": args.steps, "precision": precision,
            "eval_steps": 10 ** 6, "output_dir": str(out_dir / precision)})
        cfg = dataclasses.replace(cfg, time_budget=None)          # the same steps for every precision
        resolve_precision(cfg.precision)                           # fp16 on a CPU: a clear error before training
        t0 = time.time()
        metrics = train_qa(cfg, overwrite=True)
        results[precision] = {**metrics, "minutes": (time.time() - t0) / 60}
        print(f"{precision}: EM {metrics['exact']:.2f} F1 {metrics['f1']:.2f} in {results[precision]['minutes']:.1f} "
              f"min ({metrics['train_features_per_second']:.2f} train features/s)", flush=True)

    first = next(iter(results))
    rows = [f"| {p} | {r['exact']:.2f} | {r['f1']:.2f} | {r['f1'] - results[first]['f1']:+.2f} | "
            f"{r['train_features_per_second']:.2f} | {r['minutes']:.1f} | {results[first]['minutes'] / r['minutes']:.2f}x |"
            for p, r in results.items()]
    body = f"""
- `{cfg.model}` fine-tuned for exactly {args.steps} steps (`{Path(args.base).name}` with the model's defaults: learning rate
  {cfg.learning_rate:g}, batch {cfg.train_batch_size}, {cfg.lr_scheduler_type} schedule, warmup {cfg.warmup_ratio:g},
  weight averaging {cfg.weight_averaging:g}, windows {cfg.max_seq_length}/{cfg.doc_stride}, seed {cfg.seed}) on the
  `train` half of SQuAD v1.1 dev, scored on its validation carve-out ({cfg.validation_fraction:g} of its articles);
  the test half is not read
- 2048 x 2048 matmul in the same run: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s

| precision | EM | F1 | F1 vs {first} | train features/s | minutes (train + score) | speed vs {first} |
|---|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows)
    print(body)
    if not args.no_docs:
        append_section("bf16 vs fp32: the same fine-tuning steps, F1 and minutes", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

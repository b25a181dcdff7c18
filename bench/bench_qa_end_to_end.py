"""End-to-end QA quality and time: fine-tune on the `train` article half of SQuAD v1.1 dev
(5,696 questions), score the `test` half (4,874 questions) with the official metric.

    python bench/bench_qa_end_to_end.py [--model builtin:minilm-l6] [--epochs 2] [--learning-rate 1e-4]

Prints EM/F1, minutes and features/s, and appends them to docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section, require_shared_data  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--train-batch-size", type=int, default=16)
    ap.add_argument("--max-seq-length", type=int, default=384)
    ap.add_argument("--doc-stride", type=int, default=128)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--output-dir", default="runs/bench-e2e")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    require_shared_data()

    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.qa.train import QATrainConfig, train_qa
    from encoderlab.training import resolve_precision

    cfg = QATrainConfig(model=args.model, output_dir=args.output_dir, train=str(SQUAD_DEV), split_file=str(SQUAD_SPLIT),
                        train_split="train", eval_split="test", num_train_epochs=args.epochs,
                        learning_rate=args.learning_rate, train_batch_size=args.train_batch_size,
                        max_seq_length=args.max_seq_length, doc_stride=args.doc_stride, precision=args.precision,
                        warmup_ratio=0.1, logging_steps=50)
    t0 = time.time()
    m = train_qa(cfg, overwrite=True)
    minutes = (time.time() - t0) / 60
    line = (f"EM {m['exact']:.2f} · F1 {m['f1']:.2f} · {minutes:.1f} min wall · train "
            f"{m['train_features_per_second']:.2f} features/s · eval {m['features_per_second']:.1f} features/s")
    print(line)
    if not args.no_docs:
        evals = [h for h in _history(args.output_dir) if "eval_exact" in h and not h.get("final")]
        curve = ", ".join(f"epoch {h['epoch']:.2g}: EM {h['eval_exact']:.1f}" for h in evals)
        append_section("QA end to end: train half -> test half of SQuAD v1.1 dev", f"""
- model `{args.model}`, precision {resolve_precision(args.precision)}, {args.epochs} epochs, learning_rate {args.learning_rate}, batch {args.train_batch_size}, max_seq_length {args.max_seq_length}, doc_stride {args.doc_stride}
- train: {m['train_questions']} questions -> {m['train_features']} features; test: {m['total']} questions -> {m['eval_features']} features

| EM | F1 | wall minutes | train features/s | eval features/s | train loss |
|---|---|---|---|---|---|
| {m['exact']:.2f} | {m['f1']:.2f} | {minutes:.1f} | {m['train_features_per_second']:.2f} | {m['features_per_second']:.1f} | {m['train_loss']:.3f} |

EM per evaluation: {curve or 'n/a'}
""")
    return 0


def _history(run_dir: str) -> list[dict]:
    from encoderlab.runs import RunDir

    return RunDir(run_dir).history()


if __name__ == "__main__":
    raise SystemExit(main())

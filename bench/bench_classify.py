"""Text classification quality and time on CPU: SST-2 (GLUE) and an IMDB stratified subsample.

    python bench/bench_classify.py [--part sst2|imdb|all] [--model builtin:minilm-l6] [--quick] [--no-docs]

* SST-2: fine-tune on the full train.tsv (67,349 sentences), score dev.tsv (872): accuracy and wall
  minutes. Target: >= 89 % within 30 minutes on CPU (anchors: MiniLM-L6 91.5, BERT-base 92.3).
* IMDB: fine-tune on a stratified subsample of train (default 2,000 reviews), score a stratified
  subsample of test (default 2,000 of 25,000), head+tail truncation (Sun et al. 2019).

Prints the figures and appends a section to docs/benchmarks.md (unless --no-docs). --quick runs
tiny sizes (scratch:bert-tiny unless --model is given) to check that the script works.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, append_section  # noqa: E402

SST2 = SHARED_DATA / "sst2"
IMDB = SHARED_DATA / "imdb"


def _run(cfg, label: str) -> tuple[dict, float]:
    from encoderlab.classify.train import train_classify

    t0 = time.time()
    metrics = train_classify(cfg, overwrite=True)
    minutes = (time.time() - t0) / 60
    print(f"{label}: accuracy {100 * metrics['accuracy']:.2f} · f1 {100 * metrics['f1']:.2f} · mcc {metrics['mcc']:.3f}"
          f" · {minutes:.1f} min wall · train {metrics['train_examples_per_second']:.1f} texts/s")
    return metrics, minutes


def _curve(run_dir: str) -> str:
    from encoderlab.runs import RunDir

    evals = [h for h in RunDir(run_dir).history() if "eval_accuracy" in h and not h.get("final")]
    return ", ".join(f"step {h['step']} ({h['time'] / 60:.1f} min): {100 * h['eval_accuracy']:.1f}" for h in evals) or "n/a"


def bench_sst2(args, precision: str) -> str:
    from encoderlab.classify.train import ClassifyTrainConfig

    out = f"{args.output_dir}/sst2"
    cfg = ClassifyTrainConfig(model=args.model, output_dir=out, train=str(SST2 / "train.tsv"), eval=str(SST2 / "dev.tsv"),
                              num_train_epochs=args.epochs, learning_rate=args.learning_rate,
                              train_batch_size=args.train_batch_size, max_seq_length=args.max_seq_length,
                              eval_steps=args.eval_steps, logging_steps=50, precision=args.precision,
                              limit=64 if args.quick else None, eval_limit=32 if args.quick else None,
                              max_steps=4 if args.quick else -1)
    m, minutes = _run(cfg, "SST-2 dev")
    verdict = "meets" if m["accuracy"] >= 0.89 and minutes <= 30 else "misses"
    return f"""
### SST-2 (GLUE): full train -> dev

- model `{args.model}`, precision {precision}, {args.epochs} epoch(s), learning_rate {args.learning_rate}, batch {args.train_batch_size}, max_seq_length {args.max_seq_length}, truncation head
- train: {m['train_examples']} sentences; dev: {m['total']} sentences

| dev accuracy | F1 | MCC | wall minutes | train texts/s | train loss |
|---|---|---|---|---|---|
| {100 * m['accuracy']:.2f} | {100 * m['f1']:.2f} | {m['mcc']:.3f} | {minutes:.1f} | {m['train_examples_per_second']:.1f} | {m['train_loss']:.3f} |

Target >= 89 % in <= 30 min: {verdict} it. Anchors (published dev accuracy): MiniLM-L6 91.5, BERT-base 92.3.
Accuracy per evaluation: {_curve(out)}
"""


def bench_imdb(args, precision: str) -> str:
    from encoderlab.classify.train import ClassifyTrainConfig

    out = f"{args.output_dir}/imdb"
    n_train, n_test = (64, 32) if args.quick else (args.imdb_train, args.imdb_test)
    cfg = ClassifyTrainConfig(model=args.model, output_dir=out, train=str(IMDB / "train.jsonl.gz"),
                              eval=str(IMDB / "test.jsonl.gz"), limit=n_train, eval_limit=n_test, stratify=True,
                              num_train_epochs=args.imdb_epochs, learning_rate=args.learning_rate,
                              train_batch_size=args.imdb_batch_size, max_seq_length=args.imdb_max_seq_length,
                              truncation="head+tail", precision=args.precision, logging_steps=25,
                              max_steps=4 if args.quick else -1, seed=args.seed)
    m, minutes = _run(cfg, "IMDB test subsample")
    return f"""
### IMDB: stratified subsample, head+tail truncation

- model `{args.model}`, precision {precision}, {args.imdb_epochs} epoch(s), learning_rate {args.learning_rate}, batch {args.imdb_batch_size}, max_seq_length {args.imdb_max_seq_length}, truncation head+tail (first quarter + last three quarters of the token budget)
- train: {m['train_examples']} reviews, a stratified sample of train.jsonl.gz (25,000; seed {args.seed}); test: {m['total']} reviews, a stratified sample of test.jsonl.gz (25,000)

| test accuracy | F1 | MCC | wall minutes | train texts/s | train loss |
|---|---|---|---|---|---|
| {100 * m['accuracy']:.2f} | {100 * m['f1']:.2f} | {m['mcc']:.3f} | {minutes:.1f} | {m['train_examples_per_second']:.1f} | {m['train_loss']:.3f} |
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("sst2", "imdb", "all"), default="all")
    ap.add_argument("--model", default=None, help="default builtin:minilm-l6 (scratch:bert-tiny with --quick)")
    ap.add_argument("--epochs", type=float, default=1.0, help="SST-2 epochs")
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--train-batch-size", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int, default=128, help="SST-2 (its longest sentence is ~70 tokens)")
    ap.add_argument("--eval-steps", type=int, default=500)
    ap.add_argument("--imdb-train", type=int, default=2000)
    ap.add_argument("--imdb-test", type=int, default=2000)
    ap.add_argument("--imdb-epochs", type=float, default=2.0)
    ap.add_argument("--imdb-batch-size", type=int, default=16)
    ap.add_argument("--imdb-max-seq-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--output-dir", default="runs/bench-classify")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    ap.add_argument("--no-docs", action="store_true", help="do not append to docs/benchmarks.md")
    args = ap.parse_args(argv)
    args.model = args.model or ("scratch:bert-tiny" if args.quick else "builtin:minilm-l6")
    needed = ([SST2 / "train.tsv", SST2 / "dev.tsv"] if args.part in ("sst2", "all") else []) + \
             ([IMDB / "train.jsonl.gz", IMDB / "test.jsonl.gz"] if args.part in ("imdb", "all") else [])
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(f"needs the shared data files {', '.join(missing)}; not found")

    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.training import resolve_precision

    precision = resolve_precision(args.precision)
    sections = []
    if args.part in ("sst2", "all"):
        sections.append(bench_sst2(args, precision))
    if args.part in ("imdb", "all"):
        sections.append(bench_imdb(args, precision))
    if not args.no_docs:
        title = "Text classification" + (" (--quick smoke test, not a result)" if args.quick else "")
        append_section(title, "\n".join(sections))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

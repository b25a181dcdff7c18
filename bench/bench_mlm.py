"""Masked-LM throughput and perplexity curve: continued pretraining of MiniLM on IMDB reviews
(domain adaptation), then (optionally) IMDB sentiment classification from the base and the adapted model.

    python bench/bench_mlm.py [--reviews 2000 --epochs 1 --max-seq-length 128] [--classify 1000] [--quick] [--no-docs]

The corpus is the first --reviews reviews of ../shared/data/imdb/unsup.jsonl.gz (50,000 unlabelled
reviews); 5% of them are held out (whole reviews) for the perplexity, with fixed masks. The
perplexity is measured before training (epoch 0) and --evals-per-epoch times per epoch.
With --classify N, `builtin:minilm-l6` and the adapted model are each fine-tuned on N stratified IMDB
training reviews and scored on --classify-eval test reviews (same settings and seed).
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, append_section  # noqa: E402

IMDB = SHARED_DATA / "imdb"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--reviews", type=int, default=2000, help="IMDB unsup reviews read (5%% of them held out)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--evals-per-epoch", type=int, default=4)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=5e-5)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--whole-word-mask", action="store_true")
    ap.add_argument("--classify", type=int, default=1000, help="IMDB training reviews for the classification "
                                                               "comparison (0: skip it)")
    ap.add_argument("--classify-eval", type=int, default=1000, help="IMDB test reviews scored")
    ap.add_argument("--output-dir", default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    ap.add_argument("--no-docs", action="store_true", help="do not append to docs/benchmarks.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.reviews, args.max_seq_length, args.batch_size, args.evals_per_epoch = 40, 64, 8, 2
        args.classify, args.classify_eval = min(args.classify, 32), min(args.classify_eval, 32)
    unsup = IMDB / "unsup.jsonl.gz"
    if not unsup.exists():
        sys.exit(f"needs {unsup} (the shared IMDB data); not found")

    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.mlm.train import PretrainConfig, format_table, pretrain
    from encoderlab.training import resolve_precision

    tmp = Path(args.output_dir or tempfile.mkdtemp(prefix="bench-mlm-"))
    # eval every 1/evals_per_epoch of an epoch: count the packed training sequences first
    from encoderlab.mlm.corpus import hold_out, load_corpus
    from encoderlab.mlm.features import pack_for_mlm
    from encoderlab.models import load_tokenizer

    cfg = PretrainConfig(model=args.model, corpus=str(unsup), limit=args.reviews, output_dir=str(tmp / "pretrain"),
                         num_train_epochs=args.epochs, max_seq_length=args.max_seq_length,
                         train_batch_size=args.batch_size, learning_rate=args.learning_rate, precision=args.precision,
                         whole_word_mask=args.whole_word_mask, logging_steps=10)
    train_docs, _ = hold_out(load_corpus(cfg.corpus, limit=cfg.limit), cfg.validation_fraction, cfg.seed)
    chunks = len(pack_for_mlm(train_docs.documents, load_tokenizer(args.model), max_seq_length=args.max_seq_length))
    steps_per_epoch = math.ceil(chunks / args.batch_size)
    cfg.eval_steps = max(1, steps_per_epoch // args.evals_per_epoch)
    precision = resolve_precision(args.precision)
    print(f"pretraining {args.model} on {args.reviews} IMDB unsup reviews: {chunks} sequences of <= "
          f"{args.max_seq_length} tokens, {steps_per_epoch} steps per epoch, eval every {cfg.eval_steps} steps, "
          f"precision {precision}")
    t = time.time()
    metrics = pretrain(cfg, overwrite=True, log=print)
    wall = time.time() - t
    table = format_table(metrics["evaluations"])
    print(table)
    print(f"training {metrics['train_tokens_per_second']:.0f} tokens/s · evaluation "
          f"{metrics['tokens_per_second']:.0f} tokens/s · {wall / 60:.1f} min")

    clf_rows = []
    if args.classify:
        from encoderlab.classify.train import ClassifyTrainConfig, train_classify

        for label, model in (("base", args.model), ("IMDB-adapted", str(tmp / "pretrain" / "model"))):
            c = ClassifyTrainConfig(model=model, train=str(IMDB / "train.jsonl.gz"), eval=str(IMDB / "test.jsonl.gz"),
                                    limit=args.classify, eval_limit=args.classify_eval, num_train_epochs=1,
                                    max_seq_length=args.max_seq_length, train_batch_size=args.batch_size,
                                    learning_rate=5e-5, precision=args.precision,
                                    output_dir=str(tmp / f"classify-{label}"))
            m = train_classify(c, overwrite=True, log=print)
            clf_rows.append((label, model, m["accuracy"], m.get("f1")))
            print(f"classify with {label} {model}: accuracy {m['accuracy']:.4f}")
    if args.output_dir is None:
        shutil.rmtree(tmp, ignore_errors=True)

    if not args.no_docs:
        body = f"""
- model `{args.model}` (continued pretraining; its MLM head starts untrained), corpus: the first {args.reviews} reviews of `imdb/unsup.jsonl.gz`, {metrics['train_documents']} for training -> {metrics['train_chunks']} packed sequences ({metrics['train_tokens']:,} tokens), {metrics['eval_documents']} held out ({metrics['eval_masked_tokens']:,} masked tokens, fixed masks)
- max_seq_length {args.max_seq_length}, batch {args.batch_size}, learning_rate {args.learning_rate}, {args.epochs} epoch(s), precision {precision}, masking 15% (80/10/10){", whole words" if args.whole_word_mask else ""}
- throughput: **{metrics['train_tokens_per_second']:.0f} training tokens/s**, {metrics['tokens_per_second']:.0f} evaluation tokens/s; wall {wall / 60:.1f} min

```
{table}
```
"""
        if clf_rows:
            body += (f"\nIMDB sentiment, {args.classify} training reviews (stratified), {args.classify_eval} test "
                     f"reviews, 1 epoch, same settings:\n\n| start | accuracy | F1 |\n|---|---|---|\n"
                     + "\n".join(f"| {label} (`{model if label == 'base' else 'pretrain run /model'}`) | {acc:.4f} | "
                                 f"{'' if f1 is None else f'{f1:.4f}'} |" for label, model, acc, f1 in clf_rows) + "\n")
        append_section("MLM continued pretraining: MiniLM on IMDB reviews", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The pretrain -> fine-tune chain of the README, measured: continued masked-LM pretraining of MiniLM,
then SST-2 classification from the adapted encoder, then SQuAD v2.0 QA from the SST-2 model.

    python bench/bench_chain.py [--reviews 500] [--sst2 8000] [--squad 5690] [--quick] [--no-docs]

1. `encoderlab pretrain` builtin:minilm-l6 on the first --reviews IMDB unlabelled reviews (5% held out):
   perplexity before and after.
2. `encoderlab train classify` from step 1's model on --sst2 stratified SST-2 training sentences,
   accuracy/F1 on the full SST-2 dev set (872).
3. `encoderlab train qa` from step 2's model on --squad questions of the `train` article half of
   SQuAD v2.0 dev (rebuilt file), EM/F1/HasAns/NoAns on --squad-eval questions of the `test` half
   (SQuAD v2.0 dev shares its articles with v1.1 dev: the split file keeps them apart).

Every step is the CLI command a user would type (printed), run in a subprocess; the figures come from
each run's metrics.json. Appends a section to docs/benchmarks.md unless --no-docs.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, SQUAD_SPLIT, append_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def encoderlab(args: list[str]) -> tuple[dict, float]:
    """Run one `encoderlab ...` command; returns (its --json metrics, wall seconds)."""
    cmd = [sys.executable, "-m", "encoderlab", *args, "--overwrite", "--json"]
    print("$ encoderlab " + " ".join(shlex.quote(a) for a in args), flush=True)
    t = time.time()
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"step failed with exit code {proc.returncode}: {' '.join(args[:2])}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.time() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reviews", type=int, default=500, help="IMDB unlabelled reviews for pretraining")
    ap.add_argument("--sst2", type=int, default=8000, help="SST-2 training sentences (stratified)")
    ap.add_argument("--squad", type=int, default=5690, help="SQuAD v2.0 training questions (train half: 5,690)")
    ap.add_argument("--squad-eval", type=int, default=1000, help="SQuAD v2.0 questions scored (test half)")
    ap.add_argument("--output-dir", default="runs/bench-chain")
    ap.add_argument("--start-at", type=int, choices=(1, 2, 3), default=1,
                    help="reuse the finished runs of the earlier steps in --output-dir (their metrics.json)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    unsup, sst2 = SHARED_DATA / "imdb" / "unsup.jsonl.gz", SHARED_DATA / "sst2"
    v2 = SHARED_DATA / "squad-v2.0" / "dev-v2.0-rebuilt.json"
    for path in (unsup, sst2 / "train.tsv", v2, SQUAD_SPLIT):
        if not path.exists():
            sys.exit(f"needs {path} (the shared data); not found")
    model = "scratch:bert-tiny" if args.quick else "builtin:minilm-l6"
    if args.quick:
        args.reviews, args.sst2, args.squad, args.squad_eval = 40, 200, 100, 50
    out = Path(args.output_dir)
    t0 = time.time()

    def step(n: int, name: str, args_: list[str]) -> tuple[dict, float]:
        if n < args.start_at:           # reuse an earlier step's model; its figures only if it finished here
            if n == args.start_at - 1 and not (out / name / "model" / "config.json").is_file():
                sys.exit(f"--start-at {args.start_at}: no model in {out / name}")
            path = out / name / "metrics.json"
            metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            return metrics, metrics.get("wall_seconds", float("nan"))
        return encoderlab(args_)

    pre, t_pre = step(1, "1-pretrain", ["pretrain", "--model", model, "--corpus", str(unsup), "--limit", str(args.reviews),
                             "--epochs", "1", "--max-seq-length", "128", "--output-dir", str(out / "1-pretrain")])
    cls, t_cls = step(2, "2-sst2", ["train", "classify", "--model", str(out / "1-pretrain" / "model"),
                             "--train", str(sst2 / "train.tsv"), "--eval", str(sst2 / "dev.tsv"),
                             "--limit", str(args.sst2), "--epochs", "1", "--lr", "1e-4", "--train-batch-size", "32",
                             "--output-dir", str(out / "2-sst2")])
    qa, t_qa = step(3, "3-squad-v2", ["train", "qa", "--model", str(out / "2-sst2" / "model"), "--train", str(v2),
                           "--split-file", str(SQUAD_SPLIT), "--train-split", "train", "--eval-split", "test",
                           "--limit", str(args.squad), "--eval-limit", str(args.squad_eval), "--epochs", "2",
                           "--lr", "2e-4", "--train-batch-size", "16", "--max-seq-length", "256", "--doc-stride", "64",
                           "--output-dir", str(out / "3-squad-v2")])
    total = time.time() - t0
    rows = [
        None if not pre else f"| 1. pretrain (MLM), {args.reviews} IMDB unlabelled reviews, 1 epoch | perplexity "
        f"{pre.get('initial_perplexity', float('nan')):.1f} → {pre['perplexity']:.1f} (held-out reviews) | {t_pre / 60:.1f} |",
        None if not cls else f"| 2. train classify, {args.sst2} SST-2 sentences, 1 epoch | accuracy {100 * cls['accuracy']:.2f} · F1 "
        f"{100 * cls['f1']:.2f} · MCC {cls['mcc']:.3f} (SST-2 dev, {cls['total']}) | {t_cls / 60:.1f} |",
        None if not qa else f"| 3. train qa, {args.squad} SQuAD v2.0 questions (train half), 2 epochs | EM {qa['exact']:.2f} · F1 "
        f"{qa['f1']:.2f} · HasAns F1 {qa.get('HasAns_f1', float('nan')):.2f} · NoAns EM "
        f"{qa.get('NoAns_exact', float('nan')):.2f} · best F1 {qa.get('best_f1', float('nan')):.2f} (no-answer "
        f"threshold {qa.get('best_f1_thresh', float('nan')):.2f}) ({qa['total']} test-half questions) | {t_qa / 60:.1f} |",
    ]
    rows = [r for r in rows if r]
    table = "| step | result | minutes |\n|---|---|---|\n" + "\n".join(rows)
    print(table)
    print(f"total {total / 60:.1f} min")
    if not args.no_docs:
        append_section("Pretrain → fine-tune chain (MiniLM: IMDB MLM → SST-2 → SQuAD v2.0)" if not args.quick else
                       "Pretrain → fine-tune chain (quick smoke run)",
                       f"Model `{model}`; each step starts from the previous step's `RUN/model`"
                       + (f" (steps before {args.start_at} reused from earlier runs in `{out}`)" if args.start_at > 1 else "")
                       + f".\n\n{table}\n\nTotal {total / 60:.1f} minutes for the steps run here.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

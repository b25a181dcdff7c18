"""torch.compile vs eager for QA training steps and inference batches, interleaved in one run.

    python bench/bench_compile.py [--model builtin:minilm-l6] [--steps 6] [--batch-size 16] [--no-docs]

Two copies of the model (same seed), one compiled the way `--compile on` does it (`training.compile_model`:
``nn.Module.compile(dynamic=True)``), train on the same length-grouped, dynamically padded batches of the
bundled SQuAD sample (384-token windows) with the engine's AdamW: first the compilation (the first steps,
one per new shape until dynamic shapes take over), then `--steps` timed steps, alternating eager and compiled
(A, B, A, B ... on the same batch), then inference batches of 64 the same way. Prints the medians and
appends a section to docs/performance.md (machine, commit, command) unless `--no-docs`.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_section  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=3, help="Untimed steps (compilation) before the timed ones.")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.data.squad import load_squad
    from encoderlab.models import load_model
    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.training import DynamicPadCollator, adamw_options, compile_model

    tok = load_model(args.model, "qa", seed=0).tokenizer
    data = load_squad("builtin:squad-sample")
    feats = make_features(data.examples, tok, QAFeatureConfig(384, 128))
    cols = feats.model_inputs(with_labels=True)
    order = sorted(range(len(feats)), key=lambda i: -len(cols["input_ids"][i]))[::7]   # varied lengths
    rows = [{k: cols[k][i] for k in cols} for i in order]
    collator = DynamicPadCollator(tok)
    b = args.batch_size
    n = args.warmup + args.steps
    batches = [collator(rows[(i * b) % len(rows):(i * b) % len(rows) + b]) for i in range(n)]
    batches = batches[::2] + batches[1::2]          # long and short batches mixed
    runs = {}
    for name in ("eager", "compiled"):
        model = load_model(args.model, "qa", seed=0).model
        model.train()
        if name == "compiled" and not compile_model(model, log=print):
            return 1
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01, **adamw_options("cpu")))

    def step(name, batch) -> float:
        model, opt = runs[name]
        t = time.perf_counter()
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - t

    warm = {name: sum(step(name, batches[i]) for i in range(args.warmup)) for name in runs}
    times = {name: [] for name in runs}
    for i in range(args.warmup, n):
        for name in runs:
            times[name].append(step(name, batches[i]))
    infer = {name: [] for name in runs}
    eval_batches = [collator([{k: v for k, v in r.items() if "positions" not in k} for r in rows[j:j + 64]])
                    for j in (0, 64, 128, 0, 64)]
    with torch.inference_mode():
        for batch in eval_batches:
            for name, (model, _) in runs.items():
                model.eval()
                t = time.perf_counter()
                model(**batch)
                infer[name].append(time.perf_counter() - t)
    train_ratio = statistics.median(e / c for e, c in zip(times["eager"], times["compiled"]))
    infer_ratio = statistics.median(e / c for e, c in zip(infer["eager"][2:], infer["compiled"][2:]))
    tokens = [int(x["attention_mask"].sum()) for x in batches[args.warmup:]]
    body = (f"{args.model}, {torch.get_num_threads()} threads, batches of {b} dynamically padded 384-token windows "
            f"({min(tokens):,}-{max(tokens):,} tokens), engine AdamW; compiled = `training.compile_model` "
            f"(nn.Module.compile, dynamic=True).\n\n"
            f"| | eager | compiled | eager / compiled |\n|---|---:|---:|---:|\n"
            f"| first {args.warmup} training steps (compilation) | {warm['eager']:.1f} s | {warm['compiled']:.1f} s | "
            f"{warm['eager'] / warm['compiled']:.2f}x |\n"
            f"| training step, median of {args.steps} interleaved | {statistics.median(times['eager']):.2f} s | "
            f"{statistics.median(times['compiled']):.2f} s | {train_ratio:.2f}x (median of per-step ratios) |\n"
            f"| inference batch of 64, median of {len(eval_batches) - 2} after 2 warm-up | "
            f"{statistics.median(infer['eager'][2:]):.2f} s | {statistics.median(infer['compiled'][2:]):.2f} s | "
            f"{infer_ratio:.2f}x |\n")
    print(body)
    if not args.no_docs:
        append_section("torch.compile vs eager (QA training steps and inference)", body, doc="performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

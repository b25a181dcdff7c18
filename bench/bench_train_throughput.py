"""Training and inference throughput: encoderlab vs the standard Hugging Face recipe, same model,
same features, same machine, one run.

The standard recipe (../shared/reference/hf_reference_qa.py) pads every feature to max_length and
uses `default_data_collator` with a random sampler, in fp32. encoderlab pads each batch dynamically,
groups batches by length and uses bf16 autocast where the CPU is fast at it (`precision auto`).
Each configuration trains one full epoch over the same features, so all lengths are seen.

    python bench/bench_train_throughput.py [--questions 300] [--max-seq-length 256 --doc-stride 64]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--doc-stride", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)

    import datasets
    import torch
    import transformers
    from transformers import Trainer, TrainingArguments, default_data_collator

    transformers.logging.set_verbosity_error()
    from encoderlab.data.squad import load_squad, select
    from encoderlab.models import load_model
    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.runs import RunDir
    from encoderlab.training import DynamicPadCollator, TrainConfig, make_trainer, predict_in_order, resolve_precision

    if SQUAD_DEV.exists():
        data = select(load_squad(SQUAD_DEV), split_file=SQUAD_SPLIT, part="train", limit=args.questions)
    else:
        data = select(load_squad("builtin:squad-sample"), part="train", limit=args.questions)
    tok = load_model(args.model, "qa").tokenizer
    feats = make_features(data.examples, tok, QAFeatureConfig(args.max_seq_length, args.doc_stride))
    n = len(feats)
    cols = feats.model_inputs(with_labels=True)
    mean_len = float(feats.lengths.mean())
    print(f"{len(data)} questions -> {n} features, mean length {mean_len:.0f} tokens (max {args.max_seq_length})")
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    results = {}

    def standard() -> float:
        padded = {k: [row + [tok.pad_token_id if k == "input_ids" else 0] * (args.max_seq_length - len(row)) for row in v]
                  if isinstance(v[0], list) else v for k, v in cols.items()}
        model = load_model(args.model, "qa", seed=0).model
        targs = TrainingArguments(output_dir=str(tmp / "std"), per_device_train_batch_size=args.batch_size,
                                  learning_rate=1e-4, num_train_epochs=1, warmup_steps=0.1, weight_decay=0.01,
                                  save_strategy="no", report_to=[], disable_tqdm=True, seed=0, logging_steps=1000)
        trainer = Trainer(model=model, args=targs, train_dataset=datasets.Dataset.from_dict(padded),
                          data_collator=default_data_collator)
        t = time.time()
        trainer.train()
        train_fps = n / (time.time() - t)
        t = time.time()
        trainer.predict(datasets.Dataset.from_dict({k: v for k, v in padded.items() if "positions" not in k}))
        results["standard recipe (pad to max_length, fp32)"] = (train_fps, n / (time.time() - t))
        return train_fps

    def ours(precision: str) -> None:
        model = load_model(args.model, "qa", seed=0).model
        cfg = TrainConfig(model=args.model, output_dir=str(tmp / precision), learning_rate=1e-4,
                          train_batch_size=args.batch_size, num_train_epochs=1, precision=precision,
                          logging_steps=1000)
        run = RunDir(cfg.output_dir)
        run.path.mkdir(parents=True, exist_ok=True)
        ds = datasets.Dataset.from_dict({**cols, "length": feats.lengths.tolist()})
        trainer = make_trainer(model=model, tokenizer=tok, cfg=cfg, run=run, train_dataset=ds,
                               collator=DynamicPadCollator(tok), evaluator=None, metric="f1", greater_is_better=True)
        trainer.args.save_strategy = "no"
        trainer.args.disable_tqdm = True
        t = time.time()
        trainer.train()
        train_fps = n / (time.time() - t)
        p = resolve_precision(precision)
        t = time.time()
        predict_in_order(trainer.model, {k: v for k, v in cols.items() if "positions" not in k}, DynamicPadCollator(tok),
                         batch_size=64, device=torch.device("cpu"), precision=p,
                         outputs=("start_logits", "end_logits"), show_progress=False)
        results[f"encoderlab (dynamic padding + length grouping, {p})"] = (train_fps, n / (time.time() - t))

    base = standard()
    ours("fp32")
    ours("auto")
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name, (tr, inf) in results.items():
        rows.append(f"| {name} | {tr:.2f} | {tr / base:.2f}x | {inf:.1f} | {inf / results['standard recipe (pad to max_length, fp32)'][1]:.2f}x |")
        print(f"{name:55s} train {tr:6.2f} features/s ({tr / base:.2f}x)   inference {inf:6.1f} features/s")
    if not args.no_docs:
        append_section("QA training/inference throughput vs the standard recipe", f"""
- model `{args.model}`, {len(data)} train-half questions -> {n} features (mean {mean_len:.0f} tokens, max_seq_length {args.max_seq_length}, doc_stride {args.doc_stride}), batch {args.batch_size}, one epoch each

| configuration | train features/s | vs standard | inference features/s | vs standard |
|---|---|---|---|---|
""" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

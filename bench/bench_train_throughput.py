"""Training and inference throughput: encoderlab vs the standard Hugging Face recipe, same model,
same features, same machine, interleaved in one run, with the fraction of the measured matmul peak.

The standard recipe (../shared/reference/hf_reference_qa.py) pads every feature to max_length and
uses `default_data_collator` with a random sampler, in fp32, with Trainer's defaults. encoderlab pads each
batch dynamically, groups batches by length, uses the engine's AdamW (`training.adamw_kind`) and
`--precision auto` / `--compile auto` (bf16 is added as its own row where the CPU is fast at it).

Each round trains every configuration for `--steps` optimizer steps (a fresh model, its own sampling seed;
the steps after the first are timed: the first carries the start-up, and the length-grouped sampler puts its
longest batch first)
and predicts `--infer-features` features, A, B, A, B …; the CPU is shared, so only ratios of one run are
trusted. Non-pad tokens are counted by the collators. Fraction of peak: useful FLOPs (6 x non-embedding
parameters + 12 x layers x hidden x sequence length per non-pad token: forward + backward; for inference the
forward's third of it) per second over the 2048 x 2048 matmul GFLOP/s (fp32, and bf16 where it is fast) measured
at the start of every round.

    python bench/bench_train_throughput.py [--questions 300] [--steps 4] [--rounds 3] [--dropout 0] [--no-docs]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section, matmul_gflops  # noqa: E402


class Counting:
    """A collator that records the non-pad tokens of each batch it makes."""

    def __init__(self, collate):
        self.collate, self.tokens = collate, []

    def __call__(self, rows):
        batch = self.collate(rows)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


def timed_train(trainer, collate: Counting) -> tuple[float, int]:
    """(seconds, non-pad tokens) of the optimizer steps after the first: the first step carries the
    one-off start-up, and Trainer's length-grouped sampler always puts the longest batch first."""
    from transformers import TrainerCallback

    marks = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    return marks[-1] - marks[0], sum(collate.tokens[1:len(marks)])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--doc-stride", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="Optimizer steps per configuration and round (the first is "
                    "not timed).")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--infer-features", type=int, default=256, help="Features predicted per configuration and round "
                    "(the standard recipe in batches of its own 64, encoderlab in INFERENCE_BATCH_SIZE ones).")
    ap.add_argument("--dropout", type=float, default=None,
                    help="Add a row: encoderlab at --precision auto with this --dropout everywhere (the others: the "
                    "dropout `train qa` uses for the model: its own, with its recipe's --attention-dropout).")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)

    import datasets
    import torch
    import transformers
    from transformers import Trainer, TrainingArguments, default_data_collator

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    from encoderlab.config import INFERENCE_BATCH_SIZE
    from encoderlab.data.squad import load_squad, select
    from encoderlab.models import load_model
    from encoderlab.qa.config import QATrainConfig
    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.runs import RunDir
    from encoderlab.training import (DynamicPadCollator, TrainConfig, adamw_kind, cpu_has_fast_bf16, make_trainer,
                                     predict_in_order, resolve_compile, resolve_precision)

    if SQUAD_DEV.exists():
        data = select(load_squad(SQUAD_DEV), split_file=SQUAD_SPLIT, part="train", limit=args.questions)
    else:
        data = select(load_squad("builtin:squad-sample"), part="train", limit=args.questions)
    resolved = load_model(args.model, "qa")
    tok, config = resolved.tokenizer, resolved.model.config
    embedding = sum(p.numel() for n, p in resolved.model.named_parameters() if "embeddings" in n)
    n_matmul = resolved.num_parameters - embedding
    feats = make_features(data.examples, tok, QAFeatureConfig(args.max_seq_length, args.doc_stride))
    n = len(feats)
    cols = feats.model_inputs(with_labels=True)
    mean_len = float(feats.lengths.mean())
    # useful FLOPs per non-pad token of a training step (forward + backward = 3 x forward), and of inference
    flops_per_token = 6 * n_matmul + 12 * config.num_hidden_layers * config.hidden_size * mean_len
    infer_lengths = feats.lengths[:args.infer_features]
    infer_flops = float(infer_lengths.sum()) * (2 * n_matmul + 4 * config.num_hidden_layers * config.hidden_size
                                                * float(infer_lengths.mean()))
    print(f"{len(data)} questions -> {n} features, mean length {mean_len:.0f} tokens (max {args.max_seq_length})")
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    padded = {k: [row + [tok.pad_token_id if k == "input_ids" else 0] * (args.max_seq_length - len(row)) for row in v]
              if isinstance(v[0], list) else v for k, v in cols.items()}
    infer_cols = {k: v[:args.infer_features] for k, v in cols.items() if "positions" not in k}
    infer_padded = {k: v[:args.infer_features] for k, v in padded.items() if "positions" not in k}
    fast_bf16 = cpu_has_fast_bf16() or torch.cuda.is_available()
    auto = resolve_precision("auto")

    def standard(seed: int) -> tuple[float, int, float]:
        model = load_model(args.model, "qa", seed=0).model
        targs = TrainingArguments(output_dir=str(tmp / "std"), per_device_train_batch_size=args.batch_size,
                                  learning_rate=1e-4, max_steps=args.steps, warmup_steps=0.1, weight_decay=0.01,
                                  save_strategy="no", report_to=[], disable_tqdm=True, seed=seed, logging_steps=1000,
                                  per_device_eval_batch_size=64)
        collate = Counting(default_data_collator)
        trainer = Trainer(model=model, args=targs, train_dataset=datasets.Dataset.from_dict(padded), data_collator=collate)
        train_s, tokens = timed_train(trainer, collate)
        t = time.perf_counter()
        trainer.predict(datasets.Dataset.from_dict(infer_padded))
        return train_s, tokens, time.perf_counter() - t

    # the attention dropout `train qa` trains this model with (its recipe's, QATrainConfig.MODEL_DEFAULTS)
    model_attention_dropout = QATrainConfig.MODEL_DEFAULTS.get(args.model, {}).get("attention_dropout")

    def ours(precision: str, seed: int, dropout: float | None = None) -> tuple[float, int, float]:
        model = load_model(args.model, "qa", seed=0).model
        cfg = TrainConfig(model=args.model, output_dir=str(tmp / precision), learning_rate=1e-4,
                          train_batch_size=args.batch_size, max_steps=args.steps, precision=precision,
                          logging_steps=1000, seed=seed, dropout=dropout,
                          attention_dropout=None if dropout is not None else model_attention_dropout)
        run = RunDir(cfg.output_dir)
        run.path.mkdir(parents=True, exist_ok=True)
        collate = Counting(DynamicPadCollator(tok))
        ds = datasets.Dataset.from_dict({**cols, "length": feats.lengths.tolist()})
        trainer = make_trainer(model=model, tokenizer=tok, cfg=cfg, run=run, train_dataset=ds, collator=collate,
                               evaluator=None, metric="f1", greater_is_better=True, log=lambda m: None)
        trainer.args.save_strategy = "no"
        trainer.args.disable_tqdm = True
        train_s, tokens = timed_train(trainer, collate)
        t = time.perf_counter()
        predict_in_order(trainer.model, infer_cols, DynamicPadCollator(tok), batch_size=INFERENCE_BATCH_SIZE,
                         device=torch.device("cpu"), precision=resolve_precision(precision),
                         outputs=("start_logits", "end_logits"), show_progress=False)
        shutil.rmtree(run.path, ignore_errors=True)
        return train_s, tokens, time.perf_counter() - t

    std_name = "standard recipe (pad to max_length, fp32)"
    ours_name = f"encoderlab (dynamic padding + length grouping, {adamw_kind('cpu')} AdamW, {{}})"
    configs = {std_name: standard, ours_name.format("fp32"): lambda seed: ours("fp32", seed)}
    precisions = {std_name: "fp32", ours_name.format("fp32"): "fp32"}
    if auto != "fp32":
        configs[ours_name.format(auto)] = lambda seed: ours("auto", seed)
        precisions[ours_name.format(auto)] = auto
    if args.dropout is not None:
        name = ours_name.format(f"{auto}, --dropout {args.dropout:g}")
        configs[name] = lambda seed: ours("auto", seed, args.dropout)
        precisions[name] = auto
    rounds: list[dict] = []
    peaks = {"fp32": [], "bf16": []}
    for r in range(args.rounds):
        peaks["fp32"].append(matmul_gflops("float32"))
        if fast_bf16:
            peaks["bf16"].append(matmul_gflops("bfloat16"))
        row = {}
        for name, fn in configs.items():
            row[name] = fn(seed=r)
            train_s, tokens, infer_s = row[name]
            print(f"round {r + 1}: {name}: {(args.steps - 1) * args.batch_size / train_s:.2f} train features/s, "
                  f"{tokens / train_s:.0f} non-pad tokens/s, {args.infer_features / infer_s:.1f} inference features/s")
        rounds.append(row)
    shutil.rmtree(tmp, ignore_errors=True)

    peak32 = statistics.median(peaks["fp32"])
    peak16 = statistics.median(peaks["bf16"]) if peaks["bf16"] else None
    feats_per_run = (args.steps - 1) * args.batch_size        # the first step is not timed
    rows = []
    for name in configs:
        train_fps = statistics.median(feats_per_run / rd[name][0] for rd in rounds)
        infer_fps = statistics.median(args.infer_features / rd[name][2] for rd in rounds)
        train_ratio = statistics.median(rd[std_name][0] / rd[name][0] for rd in rounds)
        infer_ratio = statistics.median(rd[std_name][2] / rd[name][2] for rd in rounds)
        gflops = statistics.median(rd[name][1] * flops_per_token / rd[name][0] / 1e9 for rd in rounds)
        infer_gflops = statistics.median(infer_flops / rd[name][2] / 1e9 for rd in rounds)
        peak = peak16 if precisions[name] == "bf16" and peak16 else peak32
        rows.append(f"| {name} | {train_fps:.2f} | {train_ratio:.2f}x | {gflops:.1f} | {100 * gflops / peak:.1f} % | "
                    f"{infer_fps:.1f} | {infer_ratio:.2f}x | {infer_gflops:.1f} | {100 * infer_gflops / peak:.1f} % |")
        print(rows[-1])
    peak_text = f"fp32 {peak32:.1f} GFLOP/s" + (f", bf16 {peak16:.1f} GFLOP/s" if peak16 else
                                                 " (no fast bf16 on this CPU: fp32 is the peak that applies)")
    dropout_text = (f"the model's own, attention dropout {model_attention_dropout:g} (its recipe's default)"
                    if model_attention_dropout is not None else "the model's own")
    body = f"""
- model `{args.model}`, {len(data)} train-half questions -> {n} features (mean {mean_len:.0f} tokens, max_seq_length
  {args.max_seq_length}, doc_stride {args.doc_stride}), batch {args.batch_size}; {args.rounds} interleaved rounds of
  {args.steps} optimizer steps (the first untimed) and {len(infer_lengths)} predicted features per configuration
  (inference batches: the standard recipe 64, encoderlab {INFERENCE_BATCH_SIZE}); medians, ratios per round
- 2048 x 2048 matmul peak measured in the same run (median of the rounds): {peak_text}
- useful GFLOP/s = non-pad tokens x (6 x {n_matmul / 1e6:.1f} M non-embedding parameters + 12 x layers x hidden x
  mean length) / training seconds; for inference 2 x parameters + 4 x layers x hidden x mean length per non-pad
  token ({infer_flops / 1e9:.0f} GFLOP for the {len(infer_lengths)} features, mean {float(infer_lengths.mean()):.0f}
  tokens); the peak that applies is the one of the configuration's precision; `--compile auto` =
  {"on" if resolve_compile("auto", "cpu") else "off"} here
- dropout: the standard recipe the model's own everywhere; encoderlab what `train qa` trains the model with
  ({dropout_text})

| configuration | train features/s | vs standard | useful GFLOP/s | of the matmul peak | inference features/s | vs standard | inference GFLOP/s | of the peak |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows)
    print(body)
    if not args.no_docs:
        append_section("QA training/inference throughput vs the standard recipe", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

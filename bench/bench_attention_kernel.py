"""Which scaled-dot-product-attention kernel trains faster: PyTorch's default (a fused flash kernel on CPUs) or math.

    python bench/bench_attention_kernel.py [--model builtin:minilm-l6] [--batch-size 8]
                                           [--lengths 96,128,160,192,256,384] [--repeats 3] [--no-docs]

Times one forward + backward pass of the QA model (the whole model, as a training step runs it: autocast
in the training precision, a padded batch with its boolean mask, dropout on) at each padded batch length,
with `torch.nn.attention.sdpa_kernel` left alone (default) and restricted to SDPBackend.MATH (math), the
best of `--repeats` interleaved rounds after a warm-up; for each precision the CPU is fast at (fp32, and
bf16 where the CPU has AVX-512 BF16 / AMX) and for the model's own dropout and dropout 0. Then weighs the
per-length times by the lengths of the training features of the recipe (the train half of SQuAD v1.1 dev,
384-token windows, stride 128; length-grouped batches are about as long as their features) to estimate
a training step over the whole mix with each kernel, with the faster kernel chosen for each length, and with
the kernel encoderlab's training step picks (`training.training_attention_kernel`). The same for the
evaluation loop's forward pass (eval mode, batch INFERENCE_BATCH_SIZE), which keeps PyTorch's default.
Prints a table and appends it to docs/performance.md (machine, commit, command) unless `--no-docs`.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SQUAD_DEV, SQUAD_SPLIT, append_section, require_shared_data  # noqa: E402

KERNELS = ("default", "math")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:minilm-l6")
    ap.add_argument("--batch-size", type=int, default=8, help="the recipe's batch size")
    ap.add_argument("--lengths", default="96,128,160,192,256,384", help="padded batch lengths (tokens)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args(argv)
    require_shared_data()
    warnings.simplefilter("ignore")
    import numpy as np
    import torch
    import transformers
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from encoderlab.data.squad import load_squad, select
    from encoderlab.models import load_model
    from encoderlab.qa.features import QAFeatureConfig, make_features
    from encoderlab.config import INFERENCE_BATCH_SIZE
    from encoderlab.training import cpu_has_fast_bf16, set_dropout, training_attention_kernel

    transformers.logging.set_verbosity_error()
    lengths = sorted(int(x) for x in args.lengths.split(",") if x.strip())
    resolved = load_model(args.model, "qa", seed=0)
    model, tok = resolved.model, resolved.tokenizer
    own = next((v for k, v in vars(model.config).items() if "attention" in k and "dropout" in k
                and isinstance(v, float)), 0.1)
    train = select(load_squad(str(SQUAD_DEV)), split_file=str(SQUAD_SPLIT), part="train")
    feature_lengths = np.asarray(make_features(train.examples, tok, QAFeatureConfig(384, 128)).lengths)

    def step_seconds(kernel: str, batch: dict, dtype) -> float:
        t0 = time.perf_counter()
        with sdpa_kernel([SDPBackend.MATH]) if kernel == "math" else nullcontext():
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                loss = model(**batch).loss
            loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    def forward_seconds(kernel: str, batch: dict, dtype) -> float:
        t0 = time.perf_counter()
        with torch.inference_mode(), sdpa_kernel([SDPBackend.MATH]) if kernel == "math" else nullcontext():
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                model(**batch)
        return time.perf_counter() - t0

    def make_batch(b: int, length: int, labels: bool) -> dict:
        gen = torch.Generator().manual_seed(length)
        ids = torch.randint(1000, tok.vocab_size - 1, (b, length), generator=gen)
        mask = torch.ones(b, length, dtype=torch.long)
        mask[: b // 2, length - length // 8:] = 0          # padded rows, as in a dynamically padded batch
        batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        if labels:
            batch.update(start_positions=torch.full((b,), 1), end_positions=torch.full((b,), 2))
        return batch

    def best_of(timer, batch: dict, dtype) -> dict[str, float]:
        best = dict.fromkeys(KERNELS, float("inf"))
        for i in range(args.repeats + 1):                   # round 0 warms up
            for kernel in KERNELS:
                t = timer(kernel, batch, dtype)
                if i:
                    best[kernel] = min(best[kernel], t)
        return best

    def time_lengths(timer, batch_size: int, labels: bool, dtype, label: str, table: list[str]):
        """Both kernels' best times at each padded length (a table row per length); {kernel: [seconds]}."""
        times = {k: [] for k in KERNELS}
        for length in lengths:
            best = best_of(timer, make_batch(batch_size, length, labels), dtype)
            for kernel in KERNELS:
                times[kernel].append(best[kernel])
            table.append(f"| {label} | {length} | {best['default'] * 1e3:,.0f} ms | {best['math'] * 1e3:,.0f} ms | "
                         f"{best['default'] / best['math']:.2f}x |")
            print(table[-1], flush=True)
        return times

    def mix_row(label: str, times: dict[str, list[float]], math_at=None) -> str:
        """A batch over the recipe's length mix: per-length times interpolated at each feature's length; with
        `math_at(length) -> bool` (encoderlab's rule) a column for the kernel it picks."""
        at = {k: np.interp(feature_lengths, lengths, times[k]) for k in KERNELS}
        mix = {k: float(np.mean(at[k])) for k in KERNELS}
        mix["faster per length"] = float(np.mean(np.minimum(*at.values())))
        columns = (*KERNELS, "faster per length")
        if math_at is not None:
            picks = np.array([math_at(int(n)) for n in feature_lengths])
            mix["encoderlab"] = float(np.mean(np.where(picks, at["math"], at["default"])))
            columns += ("encoderlab",)
        return f"| {label} | " + " | ".join(f"{mix[k] * 1e3:,.0f} ms ({mix['default'] / mix[k]:.2f}x)"
                                            for k in columns) + " |"

    model.train()
    b = args.batch_size
    precisions = {"fp32": None, **({"bf16": torch.bfloat16} if cpu_has_fast_bf16() else {})}
    lines = ["| precision | dropout | batch length | default | math | default / math |", "|---|---:|---:|---:|---:|---:|"]
    summary = []
    for pname, dtype in precisions.items():
        for dropout in (own, 0.0):
            set_dropout(model, dropout)
            times = time_lengths(step_seconds, b, True, dtype, f"{pname} | {dropout:g}", lines)
            summary.append(mix_row(f"{pname} | {dropout:g}", times, lambda n, p=pname, d=dropout: not isinstance(
                training_attention_kernel(n, p, "cpu", d), nullcontext)))
    # inference: the evaluation loop's forward pass (eval mode, no dropout) at its batch size
    model.eval()
    infer = ["| precision | batch length | default | math | default / math |", "|---|---:|---:|---:|---:|"]
    infer_summary = []
    for pname, dtype in precisions.items():
        times = time_lengths(forward_seconds, INFERENCE_BATCH_SIZE, False, dtype, pname, infer)
        infer_summary.append(mix_row(pname, times))
    crossover = ", ".join(f"{p:g} % <= {int(np.percentile(feature_lengths, p))}" for p in (25, 50, 75, 90))
    body = (f"{args.model}, batch {b}, one forward + backward of the QA model per padded batch length (best of "
            f"{args.repeats} interleaved rounds), {torch.get_num_threads()} threads; dropout {own:g} is the "
            f"model's own.\n\n" + "\n".join(lines) +
            f"\n\nA training step over the recipe's length mix ({len(feature_lengths):,} train-half features; "
            f"lengths: {crossover} tokens), times interpolated per feature length (speed against default in "
            f"brackets; encoderlab: the kernel `training.training_attention_kernel` picks for each length):\n\n"
            f"| precision | dropout | default | math | faster kernel per length | encoderlab |\n"
            f"|---|---:|---:|---:|---:|---:|\n" + "\n".join(summary) + "\n\n"
            f"Inference: one forward pass of a batch of {INFERENCE_BATCH_SIZE} (the evaluation loop's batch size; "
            f"eval mode, inference mode):\n\n" + "\n".join(infer) +
            f"\n\nAn inference batch over the same length mix (encoderlab's evaluation loop keeps the default):\n\n"
            f"| precision | default | math | faster kernel per length |\n|---|---:|---:|---:|\n"
            + "\n".join(infer_summary) + "\n")
    print(body)
    if not args.no_docs:
        append_section("Attention kernel of the training steps: default (fused) vs math", body,
                       doc="performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

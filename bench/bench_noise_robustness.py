"""Synthetic ASR noise against real ASR: F1 against WER on the `test` half of SQuAD v1.1 dev.

    python bench/bench_noise_robustness.py MODEL [--levels 0.1,0.44,0.54] [--seed 0] [--limit N]

1. Measures jiwer's WER between the clean SQuAD v1.1 dev contexts and the Spoken-SQuAD contexts of the
   `test`-half articles (questions matched by id; distinct paragraphs; normalised words).
2. Runs `robustness` for MODEL on clean SQuAD (reference), Spoken-SQuAD and synthetic versions of the
   clean test half (`encoderlab data noise`, seeded) at the given levels plus the measured WER.
3. Prints and appends to docs/benchmarks.md: each version's WER, EM and F1 (questions common to all
   versions, and each version on all its own questions), how close the synthetic F1 drop at the
   measured WER comes to Spoken-SQuAD's, and writes the F1/EM-against-WER figure
   (docs/f1_vs_wer.png by default).

The noise model's defaults were set on train-half articles only; the test half is only measured here.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, SQUAD_DEV, SQUAD_SPLIT, append_section, require_shared_data  # noqa: E402

SPOKEN = SHARED_DATA / "spoken-squad" / "spoken_test-v1.1.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a QA model (fine-tuned on the train half: RUN/model)")
    ap.add_argument("--levels", default="0.1,0.44,0.54", help="synthetic WERs besides the measured one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N common questions (a quick check)")
    ap.add_argument("--plot", default=str(REPO / "docs" / "f1_vs_wer.png"))
    ap.add_argument("--max-seq-length", type=int, default=None)
    ap.add_argument("--doc-stride", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--no-docs", action="store_true", help="print only: no section in docs/benchmarks.md")
    args = ap.parse_args(argv)
    require_shared_data()

    import transformers

    transformers.logging.set_verbosity_error()
    from encoderlab.analysis.robustness import context_wer, noise_sentence, robustness, write_wer_plot
    from encoderlab.data.squad import load_squad, select

    t0 = time.time()
    clean = select(load_squad(str(SQUAD_DEV)), split_file=SQUAD_SPLIT, part="test")
    spoken = select(load_squad(str(SPOKEN)), split_file=SQUAD_SPLIT, part="test")
    spoken_ids = {e.id for e in spoken.examples}
    matched = [e.id for e in clean.examples if e.id in spoken_ids]
    real_wer = context_wer(clean, spoken, matched)
    paragraphs = len({e.context for e in clean.examples if e.id in spoken_ids})
    print(f"Spoken-SQuAD test half: WER {real_wer:.4f} against clean SQuAD ({paragraphs} paragraphs, "
          f"{len(matched)} of {len(clean)} questions)")

    levels = sorted({float(x) for x in args.levels.split(",") if x.strip()} | {round(real_wer, 4)})
    result = robustness(args.model, [("squad", str(SQUAD_DEV)), ("spoken", str(SPOKEN))], split_file=SQUAD_SPLIT,
                        part="test", limit=args.limit, max_seq_length=args.max_seq_length,
                        doc_stride=args.doc_stride, batch_size=args.batch_size, noise=levels, noise_seed=args.seed)
    minutes = (time.time() - t0) / 60
    plot = write_wer_plot(result, args.plot)
    for note in result["notes"]:
        print(f"note: {note}")

    common = {r["name"]: r for r in result["common"]["results"]}
    own = {v["name"]: v for v in result["versions"]}
    matched_name = f"wer={round(real_wer, 4):g}"
    rows = ["| version | WER (common) | EM | F1 | F1 drop | own questions | own EM | own F1 | own F1 drop |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, r in common.items():
        v = own[name]
        rows.append(f"| {name} | {100 * r['wer']:.2f}% | {r['exact']:.2f} | {r['f1']:.2f} | {r['f1_drop']:+.2f} | "
                    f"{v['questions']} | {v['exact']:.2f} | {v['f1']:.2f} | {own['squad']['f1'] - v['f1']:+.2f} |")
    gap_common = common[matched_name]["f1_drop"] - common["spoken"]["f1_drop"]
    gap_own = (own["squad"]["f1"] - own[matched_name]["f1"]) - (own["squad"]["f1"] - own["spoken"]["f1"])
    summary = (f"Spoken-SQuAD (test half) has WER {100 * real_wer:.2f}% against clean SQuAD (jiwer, normalised words, "
               f"{paragraphs} paragraphs). At that WER the synthetic version's F1 drop is "
               f"{common[matched_name]['f1_drop']:+.2f} vs Spoken-SQuAD's {common['spoken']['f1_drop']:+.2f} on the "
               f"{result['common']['questions']} questions common to all versions (difference {gap_common:+.2f}), and "
               f"{gap_own:+.2f} points apart on each version's own questions.")
    table = "\n".join(rows)
    noise_lines = "\n".join(f"- {noise_sentence(n)}" for n in result["noise"])
    print(table)
    print(noise_lines)
    print(summary)
    print(f"{minutes:.1f} min; plot: {plot}")
    if not args.no_docs:
        shown = plot.relative_to(REPO / "docs") if plot.resolve().is_relative_to((REPO / "docs").resolve()) else plot
        append_section("Synthetic ASR noise vs Spoken-SQuAD: F1 against WER (test half of SQuAD v1.1 dev)", f"""
- model `{args.model}`; synthetic levels {', '.join(f'{w:g}' for w in levels)} (seed {args.seed}, default proportions); limit {args.limit or 'none'}; {minutes:.1f} min wall

{table}

Synthetic versions (noise reports on the whole test half):
{noise_lines}

{summary}

![F1 and EM against WER]({shown})
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

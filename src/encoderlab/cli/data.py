"""The `encoderlab data` commands: data set statistics and synthetic ASR noise."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import app, fail

data_app = typer.Typer(no_args_is_help=True, help="Look at a data set before training on it (stats), or make a noisy copy of it (noise).")
app.add_typer(data_app, name="data")


def _parse_max_lens(values: list[str]) -> list[int]:
    """`--max-len 128 --max-len 256` or `--max-len 128,256,384`."""
    out = []
    for v in values:
        for part in str(v).replace(" ", ",").split(","):
            if not part:
                continue
            try:
                out.append(int(part))
            except ValueError:
                fail(f"--max-len takes whole numbers, not '{part}'")
    return out


@data_app.command("stats")
def stats_cmd(
    data: str = typer.Argument(..., help="QA data: SQuAD .json (v1.1/v2.0), .jsonl, builtin:squad-sample or hub:NAME[:CONFIG][:SPLIT]."),
    model: str = typer.Option("builtin:minilm-l6", "--model", "-m", help="Count tokens with this model's tokenizer (builtin:…, scratch:<preset>, a model or run directory, a Hub name)."),
    max_len: List[str] = typer.Option(["128,256,384,512"], "--max-len", help="Window lengths to check, repeated or comma-separated: --max-len 256 --max-len 384, or --max-len 256,384."),
    max_query_length: int = typer.Option(64, "--max-query-length", help="Questions are cut to this many tokens (as in training)."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="JSON {part: [article titles]} for --part."),
    part: Optional[str] = typer.Option(None, "--part", help="Count only this part of the split file, e.g. test."),
    histogram: Optional[Path] = typer.Option(None, "--histogram", help="Write a PNG histogram of tokens per example, with a line at each --max-len."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (tokens distribution, max_len rows)."),
) -> None:
    """Tokens per question (question + context + special tokens) and what each window length cuts.

    For each --max-len: the examples longer than it (they need more than one window) and the answers that fall outside the first window, as counts and percentages.

    Example: encoderlab data stats dev-v1.1.json --max-len 256,384 --histogram lengths.png
    """
    from ..analysis.stats import check_histogram_path, data_stats, write_histogram

    if histogram is not None:
        check_histogram_path(histogram)
    stats = data_stats(data, model=model, max_lens=_parse_max_lens(max_len), max_query_length=max_query_length,
                       split_file=split_file, part=part)
    if histogram is not None:
        write_histogram(stats, histogram)
    if json_out:
        out = stats.to_dict()
        if histogram is not None:
            out["histogram"] = str(histogram)
        typer.echo(json.dumps(out))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    d = stats.distribution()
    dist = Table(title=f"{stats.source}: tokens per example ({stats.tokenizer})")
    for k in d:
        dist.add_column(k, justify="right")
    dist.add_row(*(f"{v:,}" if isinstance(v, int) else f"{v:,.1f}" for v in d.values()))
    console.print(dist)
    cuts = Table(title=f"window lengths ({stats.answerable:,} answerable examples)")
    for name in ("max_len", "longer than max_len", "%", "answers cut", "% of answerable"):
        cuts.add_column(name, justify="right")
    for r in stats.max_len:
        cuts.add_row(str(r.max_len), f"{r.exceeding:,}", f"{r.exceeding_pct:.2f}", f"{r.answers_cut:,}",
                     f"{r.answers_cut_pct:.2f}")
    console.print(cuts)
    console.print(f"{stats.questions_cut:,} questions longer than {stats.max_query_length} tokens are cut; "
                  f"each input adds {stats.special_tokens} special tokens")
    if histogram is not None:
        console.print(f"histogram written to {histogram}")


@data_app.command("noise")
def noise_cmd(
    data: str = typer.Argument(..., help="QA data (SQuAD .json, .jsonl, builtin:squad-sample) or text data (.txt, .tsv, .csv, .jsonl, .json)."),
    wer: float = typer.Option(..., "--wer", help="Target word error rate, 0 to 1 (measured back with jiwer on normalised words)."),
    output: Path = typer.Option(..., "--output", "-o", help="The noisy copy: SQuAD .json or .jsonl for QA data, the input's format for text data."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same file."),
    proportions: str = typer.Option("0.65,0.03,0.32", "--proportions", help="Shares of substitutions, deletions, insertions (SUB,DEL,INS)."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="QA: JSON {part: [article titles]} for --part."),
    part: Optional[str] = typer.Option(None, "--part", help="QA: only the articles of this part, e.g. test."),
    text_column: List[str] = typer.Option([], "--text-column", help="Text data: the column(s) to noise (repeat) [auto: the text column and its pair]."),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as one JSON object."),
) -> None:
    """Write a copy of a data set with synthetic speech-recognition errors at a chosen word error rate.

    Substitutions with close words (same Soundex code, or same first letter and a small edit distance),
    deletions and insertions, seeded. QA answers are kept at their moved position, relocated (their text
    found elsewhere in the noisy context) or lost; a question whose answers are all lost is dropped.

    Example: encoderlab data noise dev-v1.1.json --wer 0.22 -o dev-wer22.json --split-file split.json --part test
    """
    from ..data.noise import noise_file

    try:
        props = [float(p) for p in proportions.replace(" ", "").split(",")]
    except ValueError:
        fail(f"--proportions takes three numbers SUB,DEL,INS, not '{proportions}'")
    r = noise_file(data, str(output), wer, seed=seed, proportions=props, split_file=split_file, part=part,
                   text_columns=text_column)
    if json_out:
        typer.echo(json.dumps(r))
        return
    j = r["jiwer"]
    typer.echo(f"target WER {r['target_wer']:.4f}, measured WER {r['measured_wer']:.4f} (jiwer, {j['words']:,} words: "
               f"{j['substitutions']:,} substitutions, {j['deletions']:,} deletions, {j['insertions']:,} insertions)")
    typer.echo(f"edits made: {r['substitutions']:,} substitutions, {r['deletions']:,} deletions, "
               f"{r['insertions']:,} insertions (seed {r['seed']})")
    if r["kind"] == "qa":
        typer.echo(f"answers: {r['answers_kept']:,} kept, {r['answers_relocated']:,} relocated, {r['answers_lost']:,} lost; "
                   f"{r['questions'] - r['questions_dropped']:,} of {r['questions']:,} questions kept "
                   f"({r['questions_dropped']:,} dropped: every answer lost)")
    if abs(r["measured_wer"] - r["target_wer"]) > 0.01:
        typer.echo(f"warning: the measured WER is {abs(r['measured_wer'] - r['target_wer']):.4f} from the target "
                   f"({r['words']:,} words; each word takes at most one edit)", err=True)
    typer.echo(f"written to {r['output']}")

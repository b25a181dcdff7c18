"""Token-length statistics of a QA data set: how long are the inputs, and what does a window length cut?

For each question, the input a QA model sees before windowing is

    tokens = min(question tokens, max_query_length) + context tokens + special tokens

with the model's fast tokenizer, the question cut at ``max_query_length`` tokens exactly as
``qa/features.py`` cuts it (and nothing else truncated). The report gives

* the distribution of ``tokens``: count, min, mean, median, p90, p99, max (percentiles with
  numpy's linear interpolation);
* for each ``max_len``: the examples longer than it (they would be truncated, i.e. need more than
  one window), and the answers cut: answerable examples whose answer does not fit in the first
  window — the answer's last token lies beyond ``max_len`` when the input is truncated to
  ``max_len``. The answer is the training answer (the first one located in the context, by
  ``answer_start``); percentages are of all examples and of answerable examples respectively;
* how many questions are longer than ``max_query_length`` (and were cut).

Contexts are tokenized once each (SQuAD has about five questions a context), all at once.

Example::

    from encoderlab.analysis.stats import qa_token_stats
    from encoderlab.data.squad import load_squad
    from encoderlab.models import load_tokenizer
    st = qa_token_stats(load_squad("builtin:squad-sample").examples, load_tokenizer("builtin:minilm-l6"))
    st.to_dict()["tokens"]["median"], st.max_len[0].exceeding
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.squad import QAExample
from ..errors import DataError, EncoderlabError

DEFAULT_MAX_LENS = (128, 256, 384, 512)


@dataclass
class MaxLenRow:
    max_len: int
    exceeding: int                 # examples with more tokens than max_len
    exceeding_pct: float           # % of all examples
    answers_cut: int               # answerable examples whose answer ends beyond the first window
    answers_cut_pct: float         # % of answerable examples


@dataclass
class TokenStats:
    source: str
    tokenizer: str
    max_query_length: int
    special_tokens: int            # added to a question + context pair ([CLS] … [SEP] … [SEP]: 3)
    lengths: np.ndarray = field(repr=False)       # tokens per example, in example order
    answer_end_tokens: np.ndarray = field(repr=False)   # per example: index of the answer's last token
                                                        # in its context's tokens; -1 when none
    question_tokens: np.ndarray = field(repr=False)     # per example, before the max_query_length cut
    max_len: list[MaxLenRow] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.lengths)

    @property
    def answerable(self) -> int:
        return int((self.answer_end_tokens >= 0).sum())

    @property
    def questions_cut(self) -> int:
        return int((self.question_tokens > self.max_query_length).sum())

    def distribution(self) -> dict[str, float]:
        x = self.lengths
        return {"count": int(len(x)), "min": int(x.min()), "mean": float(x.mean()), "median": float(np.median(x)),
                "p90": float(np.percentile(x, 90)), "p99": float(np.percentile(x, 99)), "max": int(x.max())}

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "tokenizer": self.tokenizer, "examples": self.count,
                "answerable": self.answerable, "max_query_length": self.max_query_length,
                "questions_over_max_query_length": self.questions_cut, "special_tokens": self.special_tokens,
                "tokens": self.distribution(),
                "max_len": [r.__dict__.copy() for r in self.max_len]}


def check_max_lens(max_lens: Sequence[int]) -> list[int]:
    """Sorted, distinct window lengths; a length of 0 or less is a user error."""
    if not max_lens:
        raise EncoderlabError("give at least one --max-len")
    bad = [m for m in max_lens if m <= 0]
    if bad:
        raise EncoderlabError(f"--max-len must be positive, not {bad[0]}")
    return sorted(set(int(m) for m in max_lens))


def qa_token_stats(examples: Sequence[QAExample], tokenizer, *, max_lens: Sequence[int] = DEFAULT_MAX_LENS,
                   max_query_length: int = 64, source: str = "", tokenizer_name: str = "") -> TokenStats:
    """Token counts of `examples` with `tokenizer` (a fast tokenizer) and what each max_len cuts."""
    lens = check_max_lens(max_lens)
    if max_query_length <= 0:
        raise EncoderlabError(f"--max-query-length must be positive, not {max_query_length}")
    if not examples:
        raise DataError(f"{source or 'data'}: no examples")
    if not getattr(tokenizer, "is_fast", False):
        raise EncoderlabError("token statistics need a fast tokenizer (offset mappings)")
    questions = [e.question.lstrip() for e in examples]        # as qa/features.py feeds them
    q_tokens = np.asarray([len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]],
                          dtype=np.int64)
    contexts = list(dict.fromkeys(e.context for e in examples))
    enc = tokenizer(contexts, add_special_tokens=False, return_offsets_mapping=True)
    c_index = {c: i for i, c in enumerate(contexts)}
    c_tokens = np.asarray([len(ids) for ids in enc["input_ids"]], dtype=np.int64)
    special = tokenizer.num_special_tokens_to_add(pair=True)

    token_starts: dict[int, np.ndarray] = {}      # context index -> character start of each token
    answer_end = np.full(len(examples), -1, dtype=np.int64)
    ctx_of = np.empty(len(examples), dtype=np.int64)
    for i, e in enumerate(examples):
        ci = ctx_of[i] = c_index[e.context]
        answer = None if e.is_impossible else e.train_answer
        if answer is None:
            continue
        if ci not in token_starts:
            offsets = enc["offset_mapping"][ci]
            token_starts[ci] = np.asarray([o[0] for o in offsets], dtype=np.int64)
        # the last context token that starts before the answer's end (qa/features.py's end label)
        a1 = answer.answer_start + len(answer.text)
        answer_end[i] = max(int(np.searchsorted(token_starts[ci], a1, side="left")) - 1, 0)

    q_used = np.minimum(q_tokens, max_query_length)
    lengths = q_used + c_tokens[ctx_of] + special
    stats = TokenStats(source, tokenizer_name or getattr(tokenizer, "name_or_path", ""), max_query_length, special,
                       lengths, answer_end, q_tokens)
    n, answerable = len(examples), stats.answerable
    for m in lens:
        exceeding = int((lengths > m).sum())
        room = m - q_used - special                    # context tokens in the first window
        cut = int(((answer_end >= 0) & (answer_end >= room)).sum())
        stats.max_len.append(MaxLenRow(m, exceeding, 100.0 * exceeding / n, cut,
                                       100.0 * cut / answerable if answerable else 0.0))
    return stats


def data_stats(data: str, *, model: str = "builtin:minilm-l6", max_lens: Sequence[int] = DEFAULT_MAX_LENS,
               max_query_length: int = 64, split_file: str | Path | None = None,
               part: str | None = None) -> TokenStats:
    """Load a QA data set (any spec `load_squad` takes) and the tokenizer of `model`, and count."""
    from ..data.squad import load_squad, select

    lens = check_max_lens(max_lens)            # refuse bad input before any loading
    if max_query_length <= 0:
        raise EncoderlabError(f"--max-query-length must be positive, not {max_query_length}")
    if split_file is not None and part is None:
        raise EncoderlabError("--split-file needs --part (which part of the split to count)")
    tokenizer = tokenizer_for(model)
    ds = load_squad(data)
    if part is not None:
        ds = select(ds, split_file=split_file, part=part)
    return qa_token_stats(ds.examples, tokenizer, max_lens=lens, max_query_length=max_query_length,
                          source=ds.source, tokenizer_name=model)


def tokenizer_for(model: str):
    """The fast tokenizer of a model spec, without loading its weights (scratch presets included)."""
    from ..errors import ModelError
    from ..models import SCRATCH_PRESETS, load_tokenizer, run_model_dir

    model = model.strip()
    if model.startswith("scratch:"):
        preset = model.split(":", 1)[1]
        if preset not in SCRATCH_PRESETS:
            raise ModelError(f"unknown scratch preset '{preset}' (available: {', '.join(SCRATCH_PRESETS)})")
        return load_tokenizer(SCRATCH_PRESETS[preset]["tokenizer"])
    spec = run_model_dir(model)
    path = Path(spec).expanduser()
    if path.exists() and not path.is_dir():
        raise ModelError(f"{path} is a file, not a model directory")
    if not path.exists() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise ModelError(f"model directory '{model}' does not exist")
    if not path.exists() and ":" in model and not model.startswith("builtin:"):
        raise ModelError(f"unknown model scheme in '{model}' (use builtin:minilm-l6, scratch:<preset>, a directory or a Hub name)")
    return load_tokenizer(spec)


def check_histogram_path(path: str | Path, option: str = "--histogram") -> Path:
    """A writable ``.png`` path for the figure of `option` (checked before any work)."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        raise EncoderlabError(f"{option} writes a PNG: give a path ending in .png, not '{path.name}'")
    if not path.parent.is_dir():
        raise EncoderlabError(f"cannot write {path}: the folder {path.parent} does not exist")
    return path


def write_histogram(stats: TokenStats, path: str | Path, *, bins: int = 60) -> Path:
    """A PNG of the token-count distribution with a dashed vertical line at each max_len."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = check_histogram_path(path)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        ax.hist(stats.lengths, bins=bins, color="#4C72B0", alpha=0.85)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, r in enumerate(stats.max_len):
            ax.axvline(r.max_len, color=colors[(i + 1) % len(colors)], linestyle="--", linewidth=1.5,
                       label=f"max_len {r.max_len}: {r.exceeding_pct:.1f}% longer, {r.answers_cut_pct:.1f}% answers cut")
        ax.set_xlabel(f"tokens per example (question ≤ {stats.max_query_length} + context + {stats.special_tokens} special)")
        ax.set_ylabel("examples")
        ax.set_title(f"{Path(stats.source).name or stats.source}: {stats.count:,} examples, tokenizer {stats.tokenizer}")
        if stats.max_len:
            ax.legend(fontsize=8)
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format="png", dpi=110)
        tmp.replace(path)
    finally:
        plt.close(fig)
    return path

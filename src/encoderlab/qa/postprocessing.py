"""Vectorized n-best span post-processing for extractive QA (SQuAD v1.1 / v2.0).

A question + context is tokenized into one or more overlapping windows
("features"); the model emits a start and an end logit per token.  This module
turns those logits into the n-best answer spans of every question ("example"),
merged across all windows of the question.

The recipe is the standard BERT / Hugging Face one, computed with numpy over
all features at once instead of a Python double loop per feature:

1. Per feature, the candidate starts are the ``n_best_size`` highest start
   logits among *context* tokens only (non-context tokens are masked before
   choosing, which is the improvement over the classic recipe, where a
   question or padding token can occupy a top-k slot and crowd out a context
   token); candidate ends likewise.  Ties at the k-th value go to the lower
   token position, so the result is deterministic.
2. A pair (start, end) is valid when both are context tokens, end >= start and
   end - start + 1 <= ``max_answer_length``.  Its score is
   start_logit + end_logit (computed in float64).
3. All valid pairs of all features of an example are merged.  Spans with the
   same (start_char, end_char) -- the same text reached from two overlapping
   windows -- keep only their highest-scoring occurrence.
4. Candidates are sorted by score, descending; ties keep the order
   (feature, start position, end position).  The first ``n_best_size`` are kept.
5. SQuAD v2 (``with_null``): the null candidate (text "", chars -1/-1), scored
   with the example's null score = min over its features of
   start_logit[cls] + end_logit[cls], is merged into the list (after non-null
   candidates of equal score).  It is always kept: when it would rank below
   the first ``n_best_size`` it takes the last slot.  The answer is "" when
   null_score - best_non_null.score > ``null_threshold``.
6. ``probability`` is a numerically stable softmax over the returned
   candidates' scores (null included).

Implementation outline (all numpy, no per-feature Python loop): top-k
starts / ends per feature via ``np.partition``; an (F, k, k) validity mask and
score array; each window pruned to its own n-best (exact, see step 3 in the
code); windows of multi-window examples merged and de-duplicated with stable
``np.lexsort``; the null inserted by rank arithmetic; per-example softmax with
``np.bincount``.  Each example's answer and best span become Python objects at
once; the n-best lists (about 20 ``Candidate`` objects a question, the largest
single cost) are built together on the first read of any ``candidates``.
Memory is O(F * n_best_size**2) on top of the inputs.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


@contextmanager
def _gc_paused():
    """Pause the cyclic GC while building hundreds of thousands of small objects that cannot form a cycle
    (roughly halves the construction time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

__all__ = ["Candidate", "ExamplePrediction", "postprocess_qa"]


@dataclass(slots=True)
class Candidate:
    """One answer span of an example's n-best list."""

    text: str
    start_char: int  # -1 for the null candidate
    end_char: int  # exclusive; text == context[start_char:end_char]; -1 for null
    score: float  # start_logit + end_logit
    start_logit: float
    end_logit: float
    probability: float  # softmax over the example's returned candidates

    @property
    def is_null(self) -> bool:
        return self.start_char < 0


@dataclass
class ExamplePrediction:
    """Post-processed prediction of one example (question).

    ``candidates`` (the n-best list) is built on first access: the answers, scores and best spans
    are ready at once, while the n-best lists of all examples of one `postprocess_qa` call (about
    20 objects a question) are made together the first time any of them is read.
    """

    candidates: list[Candidate] = field(default_factory=list)
    null_score: float | None = None
    best_non_null: Candidate | None = None
    score_diff: float | None = None
    answer: str = ""


def _get_candidates(self: ExamplePrediction) -> list[Candidate]:
    lazy = self.__dict__.pop("_lazy", None)
    if lazy is not None:
        store, index = lazy
        self._candidates = store.candidates(index)
    return self._candidates


def _set_candidates(self: ExamplePrediction, value: list[Candidate]) -> None:
    self.__dict__.pop("_lazy", None)
    self._candidates = value


# After @dataclass: its __init__, __eq__ and __repr__ go through the property.
ExamplePrediction.candidates = property(_get_candidates, _set_candidates)  # type: ignore[assignment]


class _NBestLists:
    """The n-best lists of one `postprocess_qa` call as arrays (example-major, rank-minor), turned
    into `Candidate` lists all at once on the first request."""

    def __init__(self, contexts, bounds, out_ex, columns):
        self.contexts, self.bounds, self.out_ex, self.columns = contexts, bounds, out_ex, columns
        self.lists: list[list[Candidate]] | None = None
        self.made: dict[int, Candidate] = {}      # position -> a Candidate made already (an example's best)

    def candidates(self, index: int) -> list[Candidate]:
        if self.lists is None:
            sc, ec, score, sl, el, prob = (c.tolist() for c in self.columns)
            contexts = self.contexts
            with _gc_paused():
                # The null's (-1, -1) slice of any string is "" as required.
                texts = [c[s:t] for c, s, t in zip(map(contexts.__getitem__, self.out_ex.tolist()), sc, ec)]
                cands = list(map(Candidate, texts, sc, ec, score, sl, el, prob))
                for position, made in self.made.items():    # the same object as the example's best_non_null
                    cands[position] = made
                b = self.bounds
                self.lists = [cands[b[e]:b[e + 1]] for e in range(len(b) - 1)]
            self.contexts = self.columns = self.out_ex = self.made = None     # no longer needed
        return self.lists[index]


def _k_smallest_columns(cost: np.ndarray, k: int) -> np.ndarray:
    """Columns of the ``k`` smallest costs of every row, in ascending column order.

    ``cost`` is (R, C) with ``+inf`` for excluded entries (every included cost
    must be < +inf); ``1 <= k <= C``.  Ties at the k-th smallest cost go to
    the lowest columns, so the choice is deterministic (a bare
    ``argpartition`` is not, and is also slower along axis 1).  Rows with
    fewer than ``k`` included entries are padded with excluded columns;
    callers must re-check them.
    """
    n_rows, n_cols = cost.shape
    if k >= n_cols:
        return np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    # (Selecting the k smallest rather than the k largest matters: numpy's
    # float64 introselect is ~8x slower for a kth near the end of rows full of
    # equal values, e.g. masked entries.)
    kth = np.partition(cost, k - 1, axis=1)[:, k - 1 : k]
    take = cost <= kth
    # Rows where ties at the k-th cost straddle the boundary select too many
    # entries; redo those (usually none) taking the lowest-column ties first.
    bad = np.flatnonzero(np.count_nonzero(take, axis=1) != k)
    if bad.size:
        sub, t = cost[bad], kth[bad]
        below = sub < t
        tied = sub == t
        need = k - np.count_nonzero(below, axis=1)[:, None]
        take[bad] = below | (tied & (np.cumsum(tied, axis=1) <= need))
    # Flat indices minus each row's offset: half the work of np.nonzero's (row, column) pair.
    return np.flatnonzero(take).reshape(n_rows, k) - (np.arange(n_rows) * n_cols)[:, None]


def _context_topk(
    start_logits: np.ndarray, end_logits: np.ndarray, ctx_mask: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(F, k) positions of the top-k start and end logits among context tokens.

    Excluded tokens (non-context, NaN or -inf logit) get cost +inf, so they
    cannot take a slot.  Rows are ascending in position; rows with fewer than
    k usable tokens are padded with unusable positions.

    Windows are mostly padding (a SQuAD context fills ~1/3 of L=384), so the
    features are processed in chunks of similar context extent, each only over
    the columns that hold its context tokens.
    """
    n_feat, seq_len = ctx_mask.shape
    has_ctx = ctx_mask.any(axis=1)
    lo_f = np.where(has_ctx, ctx_mask.argmax(axis=1), 0)
    hi_f = np.where(has_ctx, seq_len - ctx_mask[:, ::-1].argmax(axis=1), 0)
    s_pos = np.empty((n_feat, k), dtype=np.intp)
    e_pos = np.empty((n_feat, k), dtype=np.intp)
    by_extent = np.argsort(hi_f, kind="stable")
    for chunk in np.array_split(by_extent, max(1, n_feat // 1024)):
        hi = min(seq_len, max(int(hi_f[chunk].max()), k))
        lo = min(int(lo_f[chunk].min()), hi - k)  # keep at least k columns
        mask = ctx_mask[chunk, lo:hi]
        for logits, pos in ((start_logits, s_pos), (end_logits, e_pos)):
            x = logits[chunk, lo:hi]
            # `x > -inf` is False for NaN and -inf logits.
            cost = np.where(mask & (x > -np.inf), -x, np.inf)
            pos[chunk] = lo + _k_smallest_columns(cost, k)
    return s_pos, e_pos


def _group_starts(sorted_keys: np.ndarray, *more: np.ndarray) -> np.ndarray:
    """Indices where a new run of equal (key, *more) tuples starts in sorted arrays."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.intp)
    change = np.empty(sorted_keys.shape, dtype=bool)
    change[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=change[1:])
    for a in more:
        change[1:] |= a[1:] != a[:-1]
    return np.flatnonzero(change)


def _has_duplicate_chars(chars: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(R,) whether a row of ``chars`` repeats a value among its ``ok`` entries."""
    k = chars.shape[1]
    # Excluded entries get distinct negative fillers so they never match.
    c = np.sort(np.where(ok, chars, -2 - np.arange(k)), axis=1)
    return (c[:, 1:] == c[:, :-1]).any(axis=1)


def postprocess_qa(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: np.ndarray,
    feature_to_example: np.ndarray,
    contexts: Sequence[str],
    n_best_size: int = 20,
    max_answer_length: int = 30,
    with_null: bool = False,
    null_threshold: float = 0.0,
    cls_index: np.ndarray | None = None,
) -> list[ExamplePrediction]:
    """Turn per-token start/end logits into n-best answer spans per example.

    Args:
        start_logits, end_logits: (F, L) float logits, features padded to L.
        offsets: (F, L, 2) int char offsets into the example's context;
            (-1, -1) for every non-context token (question, special, padding).
        feature_to_example: (F,) index into ``contexts`` for each feature.
        contexts: one context string per example.
        n_best_size: candidate starts/ends per feature and size of the n-best.
        max_answer_length: maximum span length in tokens (end - start + 1).
        with_null: SQuAD v2 -- consider the null (no-answer) candidate.
        null_threshold: answer is "" when null_score - best score exceeds it.
        cls_index: (F,) position of the CLS token per feature (default 0).

    Returns:
        One :class:`ExamplePrediction` per example, in example order.  Examples
        without any feature get an empty prediction (answer "", no candidates).
        With ``with_null`` and no valid non-null span, ``score_diff`` is +inf.
        Tokens whose logit is NaN or -inf are never chosen as start / end.
    """
    start_logits = np.asarray(start_logits)
    end_logits = np.asarray(end_logits)
    if not np.issubdtype(start_logits.dtype, np.floating):
        start_logits = start_logits.astype(np.float64)
    if not np.issubdtype(end_logits.dtype, np.floating):
        end_logits = end_logits.astype(np.float64)
    offsets = np.asarray(offsets)
    feature_to_example = np.asarray(feature_to_example, dtype=np.int64).reshape(-1)
    contexts = list(contexts)  # cheap, and fast indexing for any Sequence
    n_examples = len(contexts)

    # ---- validation -------------------------------------------------------
    if start_logits.ndim != 2 or end_logits.shape != start_logits.shape:
        raise ValueError(
            f"start/end logits must both be (F, L); got {start_logits.shape} and {end_logits.shape}"
        )
    n_feat, seq_len = start_logits.shape
    if offsets.shape != (n_feat, seq_len, 2):
        raise ValueError(f"offsets must be {(n_feat, seq_len, 2)}; got {offsets.shape}")
    if feature_to_example.shape != (n_feat,):
        raise ValueError(f"feature_to_example must be ({n_feat},); got {feature_to_example.shape}")
    if n_feat and (feature_to_example.min() < 0 or feature_to_example.max() >= n_examples):
        raise ValueError("feature_to_example refers to an example outside `contexts`")
    if n_feat and seq_len == 0:
        raise ValueError("features must have at least one token")
    if n_best_size < 1:
        raise ValueError("n_best_size must be >= 1")
    if max_answer_length < 1:
        raise ValueError("max_answer_length must be >= 1")
    if cls_index is None:
        cls_index = np.zeros(n_feat, dtype=np.int64)
    else:
        cls_index = np.asarray(cls_index, dtype=np.int64).reshape(-1)
        if cls_index.shape != (n_feat,):
            raise ValueError(f"cls_index must be ({n_feat},); got {cls_index.shape}")
        if n_feat and (cls_index.min() < 0 or cls_index.max() >= seq_len):
            raise ValueError("cls_index out of range")
    if n_feat == 0:
        return [ExamplePrediction() for _ in range(n_examples)]

    feats_per_example = np.bincount(feature_to_example, minlength=n_examples)
    rows = np.arange(n_feat)[:, None]

    # ---- 1. per-feature top-k context starts / ends ------------------------
    ctx_mask = (offsets[..., 0] >= 0) & (offsets[..., 1] >= 0)  # (F, L)
    k = min(n_best_size, seq_len)
    s_pos, e_pos = _context_topk(start_logits, end_logits, ctx_mask, k)  # (F, k)
    s_val = start_logits[rows, s_pos]
    e_val = end_logits[rows, e_pos]
    # Really usable tokens (rows with < k of them are padded); NaN > -inf is False.
    s_ok = ctx_mask[rows, s_pos] & (s_val > -np.inf)
    e_ok = ctx_mask[rows, e_pos] & (e_val > -np.inf)
    s_val = s_val.astype(np.float64)  # scores in float64 whatever the input dtype
    e_val = e_val.astype(np.float64)
    s_char = offsets[rows, s_pos, 0].astype(np.int64)  # (F, k) span start chars
    e_char = offsets[rows, e_pos, 1].astype(np.int64)  # (F, k) span end chars

    # ---- 2. (F, k, k) validity and scores of all start x end pairs ----------
    # end - start in int32 (half the memory traffic of intp), then in-place masks.
    span = e_pos.astype(np.int32)[:, None, :] - s_pos.astype(np.int32)[:, :, None]
    valid = span >= 0
    valid &= span < min(max_answer_length, seq_len)  # end - start + 1 <= max_answer_length
    valid &= s_ok[:, :, None]
    valid &= e_ok[:, None, :]
    del span
    # cost = -(start + end) is exactly -score (IEEE rounding is symmetric), and
    # selecting the smallest costs is what _k_smallest_columns does.
    pair_cost = -s_val[:, :, None] - e_val[:, None, :]

    # Two tokens of one window can share a char offset (e.g. several subword
    # tokens of one character), so distinct pairs can give the same span.
    # Dedupe those within the window first (rare, so only on affected rows);
    # afterwards every window holds distinct spans, which makes the per-window
    # pruning below exact.
    dup_rows = np.flatnonzero(_has_duplicate_chars(s_char, s_ok) | _has_duplicate_chars(e_char, e_ok))
    if dup_rows.size:
        r, i, j = np.nonzero(valid[dup_rows])  # C order: (row, start, end)
        f = dup_rows[r]
        sc, ec = s_char[f, i], e_char[f, j]
        # Stable sort: best score first within a (row, span) group, ties in
        # (start, end) order; everything but the group's first is dropped.
        o = np.lexsort((-s_val[f, i] - e_val[f, j], ec, sc, r))
        loser = np.ones(o.size, dtype=bool)
        loser[o[_group_starts(r[o], sc[o], ec[o])]] = False
        valid[f[loser], i[loser], j[loser]] = False

    # ---- 3. per-window pruning to the n-best, sorted -------------------------
    # A pair outside its own window's n-best can never reach the example's
    # n-best: >= n_best_size distinct spans of that window rank above it.
    kk = k * k
    m = min(n_best_size, kk)
    np.copyto(pair_cost, np.inf, where=~valid)  # in place: no second (F, k, k) float64 array
    flat_cost = pair_cost.reshape(n_feat, kk)
    top = _k_smallest_columns(flat_cost, m)  # (F, m), ascending (start, end) order
    top_cost = np.take_along_axis(flat_cost, top, axis=1)
    # Sort each row by score desc; the stable sort keeps (start, end) order on
    # ties, and invalid (+inf) entries go last.
    order = np.argsort(top_cost, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    # Entries, grouped by feature, each feature's sorted by (score desc, start, end).
    fi, rank = np.nonzero(np.take_along_axis(top_cost, order, axis=1) < np.inf)
    si, ei = np.divmod(top[fi, rank], k)
    s_log = s_val[fi, si]
    e_log = e_val[fi, ei]
    score = s_log + e_log  # == -cost, but with the sign of zero of a plain sum
    sc = s_char[fi, si]
    ec = e_char[fi, ei]
    ex = feature_to_example[fi]

    # ---- 4. merge windows of multi-window examples --------------------------
    # Entries of single-window examples are final already (rank = position in
    # their window's sorted list).  For the others: drop duplicate spans (keep
    # the best occurrence) and re-rank by score over all their windows.  The
    # array order is (feature, rank), which on equal scores is (feature,
    # start, end), so stable sorts realise the specified tie-breaking.
    multi = np.flatnonzero(feats_per_example[ex] > 1)
    if multi.size:
        m_ex, m_sc, m_ec, m_score = ex[multi], sc[multi], ec[multi], score[multi]
        o = np.lexsort((-m_score, m_ec, m_sc, m_ex))
        firsts = o[_group_starts(m_ex[o], m_sc[o], m_ec[o])]
        alive = np.ones(ex.size, dtype=bool)
        alive[multi] = False
        alive[multi[firsts]] = True
        survivors = multi[np.sort(firsts)]
        o = np.lexsort((-score[survivors], ex[survivors]))
        ranked = survivors[o]
        ex_r = ex[ranked]
        rank[ranked] = np.arange(ranked.size) - np.searchsorted(ex_r, ex_r, side="left")
        fi, rank, score, s_log, e_log, sc, ec, ex = (
            a[alive] for a in (fi, rank, score, s_log, e_log, sc, ec, ex)
        )

    # Best non-null entry of each example: its rank-0 entry.
    best_entry = np.full(n_examples, -1, dtype=np.int64)
    top_entries = np.flatnonzero(rank == 0)
    best_entry[ex[top_entries]] = top_entries

    # ---- 5. null candidate and the final n-best ------------------------------
    if with_null:
        f_all = np.arange(n_feat)
        null_s = start_logits[f_all, cls_index].astype(np.float64)
        null_e = end_logits[f_all, cls_index].astype(np.float64)
        feat_null = null_s + null_e
        # Lowest null score per example; ties -> lowest feature index (stable).
        o = np.lexsort((feat_null, feature_to_example))
        null_f = o[_group_starts(feature_to_example[o])]
        null_ex = feature_to_example[null_f]
        null_score = np.full(n_examples, np.nan)
        null_score[null_ex] = feat_null[null_f]
        # The null goes after every non-null entry scoring >= it.
        below = score < null_score[ex]
        null_rank = np.bincount(ex[~below], minlength=n_examples)
        crowded = (null_rank >= n_best_size).astype(np.int64)
        null_pos = np.minimum(null_rank, n_best_size - 1)
        new_rank = rank + below
        # If the null would fall outside the n-best it takes the last slot.
        keep = (new_rank < n_best_size) & (rank < n_best_size - crowded[ex])
    else:
        new_rank = rank
        keep = rank < n_best_size

    # Scatter kept entries to their final place: example-major, rank-minor.
    counts = np.bincount(ex[keep], minlength=n_examples)
    if with_null:
        counts[null_ex] += 1
    first_of = np.zeros(n_examples + 1, dtype=np.int64)
    np.cumsum(counts, out=first_of[1:])
    n_out = int(first_of[-1])
    out_pos = np.full(ex.size, -1, dtype=np.int64)
    kept = np.flatnonzero(keep)
    out_pos[kept] = first_of[ex[kept]] + new_rank[kept]
    out_sc = np.empty(n_out, dtype=np.int64)
    out_ec = np.empty(n_out, dtype=np.int64)
    out_score = np.empty(n_out)
    out_sl = np.empty(n_out)
    out_el = np.empty(n_out)
    dst = out_pos[kept]
    out_sc[dst], out_ec[dst], out_score[dst] = sc[kept], ec[kept], score[kept]
    out_sl[dst], out_el[dst] = s_log[kept], e_log[kept]
    if with_null:
        dst = first_of[null_ex] + null_pos[null_ex]
        out_sc[dst] = out_ec[dst] = -1
        out_score[dst] = feat_null[null_f]
        out_sl[dst], out_el[dst] = null_s[null_f], null_e[null_f]
    out_ex = np.repeat(np.arange(n_examples), counts)

    # ---- 6. softmax per example (each list is sorted, so its max is first) --
    z = np.exp(out_score - out_score[first_of[out_ex]])
    prob = z / np.bincount(out_ex, weights=z, minlength=n_examples)[out_ex]

    # ---- build the Python objects ------------------------------------------
    # Per example: the answer and the best non-null candidate now; the n-best lists on first access.
    has_best = best_entry >= 0
    best_idx = best_entry[has_best]
    b_sc, b_ec, b_score, b_sl, b_el = (np.zeros(n_examples, dtype=a.dtype) for a in (sc, ec, score, s_log, e_log))
    b_prob = np.zeros(n_examples)       # 0.0: crowded out of the list by the null (n_best_size == 1)
    for dst, src in ((b_sc, sc), (b_ec, ec), (b_score, score), (b_sl, s_log), (b_el, e_log)):
        dst[has_best] = src[best_idx]
    best_out = out_pos[best_idx]
    b_prob[np.flatnonzero(has_best)[best_out >= 0]] = prob[best_out[best_out >= 0]]
    b_pos = np.full(n_examples, -1, dtype=np.int64)
    b_pos[has_best] = best_out
    b_sc, b_ec, b_score, b_sl, b_el, b_prob, b_pos = (a.tolist() for a in (b_sc, b_ec, b_score, b_sl, b_el, b_prob, b_pos))
    store = _NBestLists(contexts, first_of.tolist(), out_ex, (out_sc, out_ec, out_score, out_sl, out_el, prob))
    null_l = null_score.tolist() if with_null else None
    with _gc_paused():
        preds = []
        for e, (n_f, ok) in enumerate(zip(feats_per_example.tolist(), has_best.tolist())):
            if not n_f:
                preds.append(ExamplePrediction())
                continue
            if ok:
                s, t = b_sc[e], b_ec[e]
                best = Candidate(contexts[e][s:t], s, t, b_score[e], b_sl[e], b_el[e], b_prob[e])
                if b_pos[e] >= 0:
                    store.made[b_pos[e]] = best
            else:
                best = None
            if with_null:
                ns = null_l[e]
                diff = math.inf if best is None else ns - best.score
                answer = "" if best is None or diff > null_threshold else best.text
                pred = ExamplePrediction(None, ns, best, diff, answer)
            else:
                pred = ExamplePrediction(None, None, best, None, best.text if best is not None else "")
            pred.__dict__["_lazy"] = (store, e)
            preds.append(pred)
    return preds

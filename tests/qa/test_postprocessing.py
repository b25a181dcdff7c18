"""Tests for encoderlab.qa.postprocessing (vectorized n-best span extraction)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from encoderlab.qa.postprocessing import Candidate, ExamplePrediction, postprocess_qa

# --------------------------------------------------------------------------
# Brute-force reference: plain Python loops, written straight from the spec.
# --------------------------------------------------------------------------


def reference_postprocess(
    start_logits,
    end_logits,
    offsets,
    feature_to_example,
    contexts,
    n_best_size=20,
    max_answer_length=30,
    with_null=False,
    null_threshold=0.0,
    cls_index=None,
):
    n_feat, seq_len = np.shape(start_logits)
    n_ex = len(contexts)
    pairs = [[] for _ in range(n_ex)]  # (score, order, sc, ec, start_logit, end_logit)
    nulls = [None] * n_ex  # (score, start_logit, end_logit)
    order = 0
    for f in range(n_feat):
        e = int(feature_to_example[f])
        ctx_pos = [
            i for i in range(seq_len) if offsets[f, i, 0] >= 0 and offsets[f, i, 1] >= 0
        ]
        # Top-k among context tokens; ties -> lower position.
        top_s = sorted(ctx_pos, key=lambda i: (-float(start_logits[f, i]), i))[:n_best_size]
        top_e = sorted(ctx_pos, key=lambda i: (-float(end_logits[f, i]), i))[:n_best_size]
        for s in sorted(top_s):
            for t in sorted(top_e):
                if t < s or t - s + 1 > max_answer_length:
                    continue
                sl, el = float(start_logits[f, s]), float(end_logits[f, t])
                pairs[e].append((sl + el, order, int(offsets[f, s, 0]), int(offsets[f, t, 1]), sl, el))
                order += 1
        if with_null:
            c = 0 if cls_index is None else int(cls_index[f])
            sl, el = float(start_logits[f, c]), float(end_logits[f, c])
            if nulls[e] is None or sl + el < nulls[e][0]:
                nulls[e] = (sl + el, sl, el)

    has_feature = set(int(x) for x in feature_to_example)
    out = []
    for e in range(n_ex):
        if e not in has_feature:
            out.append(dict(cands=[], null_score=None, best=None, score_diff=None, answer=""))
            continue
        best_by_span = {}
        for p in pairs[e]:
            key = (p[2], p[3])
            if key not in best_by_span or p[0] > best_by_span[key][0]:
                best_by_span[key] = p
        nonnull = sorted(best_by_span.values(), key=lambda p: (-p[0], p[1]))
        best_nn = nonnull[0] if nonnull else None
        if with_null:
            null = (nulls[e][0], math.inf, -1, -1, nulls[e][1], nulls[e][2])
            merged = sorted(nonnull + [null], key=lambda p: (-p[0], p[1]))
            lst = merged[:n_best_size]
            if null not in lst:
                lst = lst[: n_best_size - 1] + [null]
        else:
            lst = nonnull[:n_best_size]
        m = max(p[0] for p in lst) if lst else 0.0
        z = [math.exp(p[0] - m) for p in lst]
        cands = [
            dict(
                text=contexts[e][p[2] : p[3]] if p[2] >= 0 else "",
                start_char=p[2],
                end_char=p[3],
                score=p[0],
                start_logit=p[4],
                end_logit=p[5],
                probability=zi / sum(z),
            )
            for p, zi in zip(lst, z)
        ]
        best = None
        if best_nn is not None:
            best = (contexts[e][best_nn[2] : best_nn[3]], best_nn[2], best_nn[3], best_nn[0])
        if with_null:
            null_score = nulls[e][0]
            score_diff = math.inf if best is None else null_score - best[3]
            answer = "" if best is None or score_diff > null_threshold else best[0]
        else:
            null_score = score_diff = None
            answer = best[0] if best is not None else ""
        out.append(dict(cands=cands, null_score=null_score, best=best, score_diff=score_diff, answer=answer))
    return out


def assert_matches_reference(preds, ref):
    assert len(preds) == len(ref)
    for e, (p, r) in enumerate(zip(preds, ref)):
        assert isinstance(p, ExamplePrediction)
        got = [(c.text, c.start_char, c.end_char, c.score, c.start_logit, c.end_logit) for c in p.candidates]
        want = [
            (c["text"], c["start_char"], c["end_char"], c["score"], c["start_logit"], c["end_logit"])
            for c in r["cands"]
        ]
        assert got == want, f"example {e}"
        assert [c.probability for c in p.candidates] == pytest.approx(
            [c["probability"] for c in r["cands"]], rel=1e-9, abs=1e-12
        )
        assert p.null_score == r["null_score"]
        assert p.score_diff == r["score_diff"]
        assert p.answer == r["answer"]
        if r["best"] is None:
            assert p.best_non_null is None
        else:
            b = p.best_non_null
            assert (b.text, b.start_char, b.end_char, b.score) == r["best"]


# --------------------------------------------------------------------------
# Random case generator: [CLS] question [SEP] context-window [SEP] padding
# --------------------------------------------------------------------------

ALPHABET = "abcdefghij"


def make_random_case(rng: np.random.Generator, n_ex: int | None = None):
    n_ex = int(rng.integers(1, 21)) if n_ex is None else n_ex
    seq_len = int(rng.integers(6, 48))
    contexts, feats = [], []  # feats: (example, offsets (L, 2))
    for e in range(n_ex):
        # Tokenize a random context into char spans separated by spaces;
        # sometimes two consecutive tokens share the same char span (as with
        # multi-token characters), which yields duplicate spans in one window.
        toks, pos, words = [], 0, []
        for _ in range(int(rng.integers(1, 40))):
            w = "".join(rng.choice(list(ALPHABET), size=int(rng.integers(1, 6))))
            words.append(w)
            toks.append((pos, pos + len(w)))
            if rng.random() < 0.1:
                toks.append((pos, pos + len(w)))
            pos += len(w) + 1
        contexts.append(" ".join(words))
        n_q = int(rng.integers(1, max(2, seq_len // 3)))
        cap = max(1, seq_len - n_q - 3)  # context tokens per window
        n_feat = int(rng.integers(1, 5))
        stride = int(rng.integers(1, cap + 1))
        for i in range(n_feat):
            window = toks[i * stride : i * stride + cap]
            if not window and i > 0:
                break
            off = np.full((seq_len, 2), -1, dtype=np.int64)
            base = 1 + n_q + 1  # [CLS] q... [SEP]
            off[base : base + len(window)] = window
            feats.append((e, off))
    order = np.arange(len(feats))
    if rng.random() < 0.3:  # features of one example need not be contiguous
        rng.shuffle(order)
    feats = [feats[i] for i in order]
    n_feat = len(feats)
    offsets = np.stack([o for _, o in feats])
    f2e = np.array([e for e, _ in feats], dtype=np.int64)
    # Occasionally drop every feature of some example.
    if n_ex > 1 and rng.random() < 0.2:
        drop = int(rng.integers(0, n_ex))
        keep = f2e != drop
        offsets, f2e = offsets[keep], f2e[keep]
        n_feat = len(f2e)
    shape = (n_feat, seq_len)
    kind = rng.integers(0, 3)
    if kind == 0:
        start = rng.normal(size=shape)
        end = rng.normal(size=shape)
    elif kind == 1:  # float32 logits
        start = rng.normal(size=shape).astype(np.float32)
        end = rng.normal(size=shape).astype(np.float32)
    else:  # small integers: lots of ties everywhere (top-k boundary, scores, spans)
        start = rng.integers(0, 4, size=shape).astype(np.float64)
        end = rng.integers(0, 4, size=shape).astype(np.float64)
    if rng.random() < 0.5:  # huge logits on non-context tokens must be ignored
        start = np.where(offsets[..., 0] < 0, start + 50, start)
        end = np.where(offsets[..., 0] < 0, end + 50, end)
    cls = None
    if rng.random() < 0.3:
        cls = rng.integers(0, seq_len, size=n_feat)
    return dict(
        start_logits=start,
        end_logits=end,
        offsets=offsets,
        feature_to_example=f2e,
        contexts=contexts,
        cls_index=cls,
    )


@pytest.mark.parametrize("with_null", [False, True])
@pytest.mark.parametrize("seed", range(60))
def test_matches_bruteforce_reference(seed, with_null):
    rng = np.random.default_rng(seed)
    case = make_random_case(rng)
    kw = dict(
        n_best_size=int(rng.choice([1, 2, 3, 5, 8, 20])),
        max_answer_length=int(rng.choice([1, 2, 4, 10, 30])),
        with_null=with_null,
        null_threshold=float(rng.normal()),
    )
    preds = postprocess_qa(**case, **kw)
    ref = reference_postprocess(**case, **kw)
    assert_matches_reference(preds, ref)
    for e, p in enumerate(preds):
        assert len(p.candidates) <= kw["n_best_size"]
        if p.candidates:
            assert sum(c.probability for c in p.candidates) == pytest.approx(1.0)
            scores = [c.score for c in p.candidates]
            assert scores == sorted(scores, reverse=True)
        for c in p.candidates:
            if c.start_char >= 0:
                assert c.text == case["contexts"][e][c.start_char : c.end_char]
        if with_null and p.candidates:
            assert any(c.start_char == -1 for c in p.candidates)


@pytest.mark.parametrize("with_null", [False, True])
def test_matches_bruteforce_reference_many_features(with_null):
    """Thousands of features: exercises the chunked top-k path as well."""
    rng = np.random.default_rng(1234 + with_null)
    case = make_random_case(rng, n_ex=1500)
    assert len(case["feature_to_example"]) > 2048
    kw = dict(n_best_size=5, max_answer_length=6, with_null=with_null, null_threshold=0.0)
    assert_matches_reference(postprocess_qa(**case, **kw), reference_postprocess(**case, **kw))


# --------------------------------------------------------------------------
# Hand-made cases
# --------------------------------------------------------------------------

CONTEXT = "the quick brown fox jumps over the lazy dog"
WORDS = CONTEXT.split()


def word_spans(text=CONTEXT):
    spans, pos = [], 0
    for w in text.split(" "):
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return spans


def feature(token_spans, seq_len=16, n_question=3):
    """Offsets for [CLS] q*n [SEP] ctx... [SEP] pad; returns (offsets, first ctx position)."""
    off = np.full((seq_len, 2), -1, dtype=np.int64)
    base = 2 + n_question
    off[base : base + len(token_spans)] = token_spans
    return off, base


def logits_with(seq_len, peaks):
    x = np.zeros(seq_len)
    for pos, val in peaks.items():
        x[pos] = val
    return x


def run_one(start, end, off, context=CONTEXT, **kw):
    return postprocess_qa(
        np.asarray(start)[None], np.asarray(end)[None], off[None], np.array([0]), [context], **kw
    )[0]


def test_simple_span_and_text_matches_offsets():
    off, b = feature(word_spans())
    start = logits_with(16, {b + 2: 5.0})  # "brown"
    end = logits_with(16, {b + 3: 5.0})  # "fox"
    p = run_one(start, end, off)
    top = p.candidates[0]
    assert top.text == "brown fox" == CONTEXT[top.start_char : top.end_char]
    assert (top.score, top.start_logit, top.end_logit) == (10.0, 5.0, 5.0)
    assert p.answer == "brown fox"
    assert p.best_non_null is top
    assert p.null_score is None and p.score_diff is None


def test_question_tokens_masked_before_topk():
    """Huge logits on question/special tokens must neither win nor eat top-k slots."""
    off, b = feature(word_spans())
    start = logits_with(16, {0: 100.0, 1: 99.0, 2: 98.0, b + 4: 1.0})
    end = logits_with(16, {0: 100.0, 1: 99.0, 3: 97.0, b + 5: 1.0})
    p = run_one(start, end, off, n_best_size=1)
    assert p.answer == "jumps over"
    assert all(c.start_char >= 0 for c in p.candidates)


def test_span_crossing_into_question_rejected():
    """A span starting on a question token and ending in the context is invalid."""
    off, b = feature(word_spans())
    start = logits_with(16, {2: 50.0, b + 1: 1.0})
    end = logits_with(16, {b + 1: 50.0})
    p = run_one(start, end, off)
    assert p.answer == "quick"
    assert all(c.start_char >= 0 and c.end_char > c.start_char for c in p.candidates)


def test_end_before_start_rejected():
    off, b = feature(word_spans())
    start = logits_with(16, {b + 6: 10.0, b + 1: 1.0})
    end = logits_with(16, {b + 2: 10.0, b + 7: 0.5})
    p = run_one(start, end, off)
    for c in p.candidates:
        assert c.start_char < c.end_char
    # The top start (b+6, 10.0) and top end (b+2, 10.0) would score 20 but end
    # before they start.  Valid: "quick brown" (1 + 10 = 11), "the lazy" (10.5).
    assert p.answer == "quick brown"
    assert p.candidates[0].score == 11.0
    assert p.candidates[1].text == "the lazy"


def test_too_long_rejected():
    off, b = feature(word_spans())
    start = logits_with(16, {b + 0: 10.0})
    end = logits_with(16, {b + 8: 10.0, b + 1: 1.0})
    p = run_one(start, end, off, max_answer_length=3)
    assert p.answer == "the quick"
    assert all(len(c.text.split()) <= 3 for c in p.candidates)
    assert run_one(start, end, off, max_answer_length=9).answer == CONTEXT


def test_answer_found_in_second_window_and_duplicates_merged():
    spans = word_spans()
    # Window 1: words 0-5, window 2: words 3-8 (overlap "fox jumps over").
    off1, b1 = feature(spans[0:6])
    off2, b2 = feature(spans[3:9])
    start = np.zeros((2, 16))
    end = np.zeros((2, 16))
    start[0, b1 + 0], end[0, b1 + 0] = 1.0, 1.0  # "the" in window 1
    start[0, b1 + 3], end[0, b1 + 4] = 2.0, 2.0  # "fox jumps" in window 1: 4.0
    start[1, b2 + 0], end[1, b2 + 1] = 3.0, 3.0  # "fox jumps" in window 2: 6.0
    start[1, b2 + 5], end[1, b2 + 5] = 4.0, 2.5  # "dog" in window 2: 6.5 ("fox..dog": 5.5)
    p = postprocess_qa(start, end, np.stack([off1, off2]), np.array([0, 0]), [CONTEXT])[0]
    assert p.answer == "dog"
    texts = [c.text for c in p.candidates]
    assert texts[:2] == ["dog", "fox jumps"]
    assert texts.count("fox jumps") == 1  # same char span from both windows -> kept once
    fj = p.candidates[1]
    assert (fj.score, fj.start_logit, fj.end_logit) == (6.0, 3.0, 3.0)  # the better window
    assert len({(c.start_char, c.end_char) for c in p.candidates}) == len(p.candidates)


def test_null_answer_threshold():
    off, b = feature(word_spans())
    start = logits_with(16, {0: 4.0, b + 1: 3.0})
    end = logits_with(16, {0: 4.0, b + 1: 3.0})
    p = run_one(start, end, off, with_null=True, null_threshold=0.0)
    assert p.null_score == 8.0
    assert p.best_non_null.text == "quick" and p.best_non_null.score == 6.0
    assert p.score_diff == 2.0
    assert p.answer == ""
    assert p.candidates[0].text == "" and p.candidates[0].start_char == -1
    assert p.candidates[0].end_char == -1 and p.candidates[0].score == 8.0
    # Higher threshold: the span wins despite the null scoring better.
    assert run_one(start, end, off, with_null=True, null_threshold=2.5).answer == "quick"
    # Without null the CLS position is just a non-context token.
    assert run_one(start, end, off).answer == "quick"


def test_null_score_is_min_over_features_and_uses_cls_index():
    spans = word_spans()
    off1, b1 = feature(spans[0:5])
    off2, b2 = feature(spans[4:9])
    start = np.zeros((2, 16))
    end = np.zeros((2, 16))
    start[0, 15], end[0, 15] = 5.0, 5.0  # CLS of feature 0 at the end: 10
    start[1, 0], end[1, 0] = 2.0, 1.0  # CLS of feature 1 at 0: 3 (the min)
    start[1, b2 + 1], end[1, b2 + 1] = 1.0, 1.0  # "over": 2
    p = postprocess_qa(
        start, end, np.stack([off1, off2]), np.array([0, 0]), [CONTEXT],
        with_null=True, cls_index=np.array([15, 0]), null_threshold=0.5,
    )[0]
    assert p.null_score == 3.0
    null = next(c for c in p.candidates if c.start_char == -1)
    assert (null.start_logit, null.end_logit) == (2.0, 1.0)
    assert p.best_non_null.text == "over"
    assert p.score_diff == 1.0 and p.answer == ""


def test_null_kept_when_outside_nbest():
    off, b = feature(word_spans())
    start = logits_with(16, {0: -10.0, b + 1: 3.0, b + 2: 2.0})
    end = logits_with(16, {0: -10.0, b + 1: 3.0, b + 2: 2.0})
    p = run_one(start, end, off, with_null=True, n_best_size=3)
    assert len(p.candidates) == 3
    assert p.candidates[-1].start_char == -1
    assert p.answer == "quick"
    # n_best_size=1: only the null is listed, but the best span is still known.
    p1 = run_one(start, end, off, with_null=True, n_best_size=1)
    assert [c.start_char for c in p1.candidates] == [-1]
    assert p1.best_non_null.text == "quick" and p1.answer == "quick"


def test_probabilities_sum_to_one_and_softmax():
    rng = np.random.default_rng(0)
    off, b = feature(word_spans(), seq_len=16)
    start, end = rng.normal(size=16) * 30, rng.normal(size=16) * 30  # large: stability
    for with_null in (False, True):
        p = run_one(start, end, off, with_null=with_null, n_best_size=7)
        probs = np.array([c.probability for c in p.candidates])
        scores = np.array([c.score for c in p.candidates])
        assert probs.sum() == pytest.approx(1.0)
        assert np.all(np.isfinite(probs))
        expected = np.exp(scores - scores.max())
        np.testing.assert_allclose(probs, expected / expected.sum(), rtol=1e-12)
        assert list(probs) == sorted(probs, reverse=True)


def test_example_without_features():
    off, b = feature(word_spans())
    start = logits_with(16, {b + 1: 3.0})
    end = logits_with(16, {b + 1: 3.0})
    for with_null in (False, True):
        preds = postprocess_qa(
            np.stack([start, start]), np.stack([end, end]), np.stack([off, off]),
            np.array([2, 0]), [CONTEXT, "unused", CONTEXT], with_null=with_null,
        )
        assert len(preds) == 3
        assert preds[1] == ExamplePrediction(candidates=[], null_score=None, best_non_null=None,
                                             score_diff=None, answer="")
        assert preds[0].answer == preds[2].answer == "quick"


def test_no_features_at_all():
    preds = postprocess_qa(
        np.zeros((0, 8)), np.zeros((0, 8)), np.zeros((0, 8, 2), dtype=np.int64),
        np.zeros(0, dtype=np.int64), ["a", "b"], with_null=True,
    )
    assert [p.answer for p in preds] == ["", ""]
    assert all(p.candidates == [] for p in preds)


def test_feature_without_context_tokens():
    off = np.full((8, 2), -1, dtype=np.int64)
    p = run_one(np.arange(8.0), np.arange(8.0), off)
    assert p.candidates == [] and p.best_non_null is None and p.answer == ""
    pn = run_one(np.arange(8.0), np.arange(8.0), off, with_null=True)
    assert [c.start_char for c in pn.candidates] == [-1]
    assert pn.candidates[0].probability == 1.0
    assert pn.score_diff == math.inf and pn.answer == ""


def test_candidate_is_dataclass_with_expected_fields():
    c = Candidate("a", 0, 1, 1.0, 0.5, 0.5, 1.0)
    assert c.is_null is False
    assert Candidate("", -1, -1, 0.0, 0.0, 0.0, 1.0).is_null


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_best_size=0),
        dict(max_answer_length=0),
        dict(feature_to_example=np.array([1])),
        dict(cls_index=np.array([99])),
        dict(offsets=np.zeros((1, 5, 2), dtype=np.int64)),
    ],
)
def test_invalid_arguments(kwargs):
    off, _ = feature(word_spans(), seq_len=16)
    args = dict(
        start_logits=np.zeros((1, 16)), end_logits=np.zeros((1, 16)), offsets=off[None],
        feature_to_example=np.array([0]), contexts=[CONTEXT],
    )
    args.update(kwargs)
    with pytest.raises(ValueError):
        postprocess_qa(**args)


# --------------------------------------------------------------------------
# Real data: SQuAD v1.1 dev windows of the real tokenizer, random logits, against the slow loops the
# benchmark times (bench/bench_postprocess.py: the standard recipe's loop and the HF n-best loop)
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("max_seq_length,doc_stride", [(384, 128), (128, 32)])
def test_matches_the_slow_loops_on_real_squad_windows(tokenizer, max_seq_length, doc_stride):
    import sys

    from _helpers import REPO, shared_file

    from encoderlab.data.squad import load_squad, select
    from encoderlab.qa.features import QAFeatureConfig, make_features

    sys.path.insert(0, str(REPO / "bench"))
    from bench_postprocess import hf_style_loop, reference_recipe_data, reference_recipe_loop

    data = select(load_squad(str(shared_file("squad-v1.1", "dev-v1.1.json"))), limit=150)
    feats = make_features(data.examples, tokenizer, QAFeatureConfig(max_seq_length, doc_stride))
    offsets = feats.padded_offsets()
    contexts = [e.context for e in data.examples]
    f2e = feats.example_index
    rng = np.random.default_rng(max_seq_length)
    # a fine-tuned model's logits: low outside the context, so the recipes' unmasked top-20 are context tokens
    is_ctx = offsets[..., 0] >= 0
    start, end = (np.where(is_ctx, rng.normal(0, 2, is_ctx.shape), rng.normal(-8, 1, is_ctx.shape)).astype(np.float32)
                  for _ in range(2))
    preds = postprocess_qa(start, end, offsets, f2e, contexts, n_best_size=20, max_answer_length=30,
                           cls_index=feats.cls_index)
    assert len(preds) == 150 and (np.bincount(f2e) > 1).sum() > (10 if max_seq_length < 384 else -1)

    _, recipe = reference_recipe_loop(start, end, reference_recipe_data(offsets, f2e, contexts))
    assert [p.answer for p in preds] == [recipe[str(i)] for i in range(len(contexts))]

    offset_lists = [[tuple(o) if o[0] >= 0 else None for o in row] for row in offsets.tolist()]
    per_example = [np.flatnonzero(f2e == e).tolist() for e in range(len(contexts))]
    answers, nbest = hf_style_loop(start, end, offset_lists, per_example, contexts)
    assert [p.answer for p in preds] == answers
    single = [e for e, fs in enumerate(per_example) if len(fs) == 1]      # merged windows dedupe spans: ours only
    assert len(single) > 50
    for e in single:
        ours = [(c.text, c.start_logit, c.end_logit) for c in preds[e].candidates]
        theirs = [(c["text"], float(c["start_logit"]), float(c["end_logit"])) for c in nbest[e]]
        assert ours == theirs
        assert [c.probability for c in preds[e].candidates] == pytest.approx([c["probability"] for c in nbest[e]])
        assert preds[e].best_non_null is preds[e].candidates[0]


@pytest.mark.timeout(30)
def test_nbest_objects_are_built_on_first_read_only(monkeypatch):
    from encoderlab.qa import postprocessing
    from encoderlab.qa.predict import NBest, candidate_dict

    made = []

    class Counted(Candidate):
        __slots__ = ()

        def __init__(self, *args):
            made.append(args[0])
            super().__init__(*args)

    monkeypatch.setattr(postprocessing, "Candidate", Counted)
    case = make_random_case(np.random.default_rng(7), n_ex=40)
    kw = dict(n_best_size=5, max_answer_length=6, with_null=True, null_threshold=0.0)
    preds = postprocess_qa(**case, **kw)
    with_best = sum(p.best_non_null is not None for p in preds)
    assert len(made) == with_best                             # the answers' spans only
    nbest = NBest([str(i) for i in range(len(preds))], preds)
    assert len(made) == with_best                             # still nothing built
    listed = dict(nbest)
    total = sum(len(p.candidates) for p in preds)
    assert len(made) == with_best + total                     # every list at once, on the first read
    for p in preds:                                           # the best is the list's own object
        if p.best_non_null is not None and p.best_non_null in p.candidates:
            assert any(c is p.best_non_null for c in p.candidates)
    assert listed == {str(i): [candidate_dict(c) for c in p.candidates] for i, p in enumerate(preds)}
    ref = reference_postprocess(**case, **kw)
    assert_matches_reference(preds, ref)

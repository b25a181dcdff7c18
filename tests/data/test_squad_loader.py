"""SQuAD / JSONL loading, validation errors that name the place, selection and leakage guards."""
from __future__ import annotations

import gzip
import json

import pytest
from _helpers import shared_file

from encoderlab.data.squad import carve_validation, check_disjoint, load_squad, select
from encoderlab.errors import DataError

CONTEXT = "The Broncos beat the Panthers 24-10 in Santa Clara. The Broncos won their third title."


def squad_file(tmp_path, qas, context=CONTEXT, version="1.1", title="T", name="d.json"):
    obj = {"version": version, "data": [{"title": title, "paragraphs": [{"context": context, "qas": qas}]}]}
    path = tmp_path / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def qa(qid="q1", question="Who won?", text="Broncos", start=4, **extra):
    return {"id": qid, "question": question, "answers": [{"text": text, "answer_start": start}], **extra}


def test_v11_roundtrip(tmp_path):
    ds = load_squad(squad_file(tmp_path, [qa()]))
    assert ds.version == "1.1" and len(ds) == 1
    ex = ds.examples[0]
    assert ex.train_answer.text == "Broncos" and ex.train_answer.answer_start == 4 and ex.title == "T"


def test_v20_impossible_and_plausible(tmp_path):
    impossible = {"id": "q2", "question": "Who lost in 1990?", "answers": [], "is_impossible": True,
                  "plausible_answers": [{"text": "Panthers", "answer_start": 21}]}
    ds = load_squad(squad_file(tmp_path, [qa(), impossible], version="v2.0"))
    assert ds.version == "2.0" and ds.has_impossible
    assert ds.gold().answers == {"q1": ["Broncos"], "q2": []}


def test_answer_not_at_start_is_repaired_to_nearest_occurrence(tmp_path):
    # "Broncos" occurs at 4 and 56; answer_start 50 is wrong, the nearest occurrence is 56
    path = squad_file(tmp_path, [qa(start=50)])
    ds = load_squad(path)
    assert ds.examples[0].train_answer.answer_start == CONTEXT.index("Broncos", 10)
    assert ds.report.repaired_answers == 1
    skipped = load_squad(path, on_bad_answer="skip")
    assert skipped.examples[0].train_answer is None and skipped.report.skipped_answers == 1
    with pytest.raises(DataError, match=r"qas\[0\] \(id q1\)\.answers\[0\]: answer text 'Broncos' is not at answer_start 50"):
        load_squad(path, on_bad_answer="error")


def test_repeated_answer_keeps_annotated_occurrence(tmp_path):
    second = CONTEXT.index("Broncos", 10)
    ds = load_squad(squad_file(tmp_path, [qa(start=second)]))
    assert ds.examples[0].train_answer.answer_start == second


def test_answer_absent_from_context_is_scored_not_trained(tmp_path):
    ds = load_squad(squad_file(tmp_path, [qa(text="Raiders", start=4)]))
    assert ds.examples[0].train_answer is None and ds.report.unlocatable_answers == 1
    assert ds.gold().answers["q1"] == ["Raiders"]


@pytest.mark.parametrize("content, message", [
    ('{"data": [', "malformed JSON at line 1"),
    ('{"version": "1.1"}', "missing key 'data'"),
    ('{"data": [{"title": "x"}]}', r"data\[0\]: missing key 'paragraphs'"),
    ('{"data": [{"paragraphs": [{"qas": []}]}]}', r"data\[0\]\.paragraphs\[0\]: missing key 'context'"),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"question": "q?", "answers": []}]}]}]}',
     r"qas\[0\]: missing key 'id'"),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"id": "1", "question": "q?", "answers": [{"text": "a"}]}]}]}]}',
     r"answers\[0\]: missing key 'answer_start'"),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"id": "1", "question": "q?", "answers": "a"}]}]}]}',
     "'answers' should be list"),
])
def test_malformed_files_name_the_place(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        load_squad(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_empty_question_and_context(tmp_path):
    with pytest.raises(DataError, match="empty question"):
        load_squad(squad_file(tmp_path, [qa(question="  ")]))
    with pytest.raises(DataError, match="empty context"):
        load_squad(squad_file(tmp_path, [qa()], context="   "))


def test_gigantic_context_is_refused(tmp_path):
    with pytest.raises(DataError, match="context has 200,000 characters"):
        load_squad(squad_file(tmp_path, [qa()], context="Broncos " * 25_000))


def test_bad_utf8_reports_byte_offset(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"data": [], "x": "\xff\xfe"}')
    with pytest.raises(DataError, match="not valid UTF-8 at byte 19"):
        load_squad(path)


def test_missing_file_and_duplicate_ids(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_squad(tmp_path / "nope.json")
    with pytest.raises(DataError, match="question id q1 appears more than once"):
        load_squad(squad_file(tmp_path, [qa(), qa()]))


def test_jsonl_hf_layout_and_gzip(tmp_path):
    rows = [{"id": "a", "question": "Who won?", "context": CONTEXT, "title": "T",
             "answers": {"text": ["Broncos"], "answer_start": [4]}},
            {"id": "b", "question": "Who lost in 1990?", "context": CONTEXT, "answers": {"text": [], "answer_start": []}}]
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    ds = load_squad(path)
    assert len(ds) == 2 and ds.version == "2.0" and ds.examples[1].is_impossible
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
        load_squad(bad)


def test_hub_name_offline_gives_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="could not be loaded from the Hugging Face Hub"):
        load_squad("hub:squad")


def test_builtin_sample_and_its_split():
    ds = load_squad("builtin:squad-sample")
    train, test = select(ds, part="train"), select(ds, part="test")
    assert len(train) + len(test) == len(ds) > 1500
    check_disjoint(train, test)
    assert select(train, limit=10).examples == train.examples[:10]


def _assert_disjoint_carve(selection, rest, valid):
    assert len(rest) + len(valid) == len(selection)
    assert {e.id for e in rest.examples}.isdisjoint(e.id for e in valid.examples)
    assert {e.context for e in rest.examples}.isdisjoint(e.context for e in valid.examples)
    check_disjoint(rest, valid)


@pytest.mark.timeout(30)
def test_carve_validation_by_article_when_articles_fit():
    ds = select(load_squad(shared_file("squad-v1.1", "dev-v1.1.json")), split_file=shared_file("squad-v1.1", "split.json"),
                part="train")
    logged = []
    rest, valid = carve_validation(ds, 0.2, seed=1, log=logged.append)
    _assert_disjoint_carve(ds, rest, valid)
    assert set(rest.titles).isdisjoint(valid.titles) and len(valid.titles) >= 2
    assert round(0.2 * len(ds)) / 2 <= len(valid) <= round(0.2 * len(ds))      # never more than asked
    assert logged == [f"validation: {len(valid)} questions ({len(valid.titles)} whole articles) carved out of the "
                      f"{len(ds)} selected questions (--validation-fraction 0.2); training: {len(rest)} questions"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", ["builtin:squad-sample", "shared"])
def test_carve_validation_within_the_limit_by_paragraph(source):
    """--limit 300 holds 1-2 articles of hundreds of questions: the carve-out takes whole paragraphs of the 300
    (it once took a 511-question article out of the full file, more than the training set)."""
    from encoderlab.qa.config import QATrainConfig
    from encoderlab.qa.train import load_qa_data

    if source == "shared":
        kw = dict(train=str(shared_file("squad-v1.1", "dev-v1.1.json")),
                  split_file=str(shared_file("squad-v1.1", "split.json")), train_split="train")
    else:
        kw = dict(train=source, train_split="train")
    logged = []
    train, valid = load_qa_data(QATrainConfig(limit=300, validation_fraction=0.05, **kw), log=logged.append)
    selection = select(load_squad(kw["train"]), split_file=kw.get("split_file"), part="train", limit=300)
    _assert_disjoint_carve(selection, train, valid)
    assert {e.id for e in train.examples} | {e.id for e in valid.examples} == {e.id for e in selection.examples}
    largest_paragraph = max(sum(1 for e in selection.examples if e.context == c) for c in {e.context for e in selection.examples})
    assert 15 - largest_paragraph < len(valid) <= 15                 # 5 % of 300, whole paragraphs
    assert any(f"validation: {len(valid)} questions (" in m and "whole paragraph" in m and "carved out of the 300 selected" in m
               and f"training: {len(train)} questions" in m for m in logged), logged


@pytest.mark.timeout(10)
def test_carve_validation_takes_one_paragraph_when_none_fits_and_refuses_one_context():
    ds = load_squad("builtin:squad-sample")
    first = ds.examples[0].context
    one = ds.subset([e for e in ds.examples if e.context == first])
    with pytest.raises(DataError, match="share one context"):
        carve_validation(one, 0.5)
    second = next(e.context for e in ds.examples if e.context != first)
    two = ds.subset([e for e in ds.examples if e.context in (first, second)])
    rest, valid = carve_validation(two, 0.01)
    _assert_disjoint_carve(two, rest, valid)
    assert len({e.context for e in valid.examples}) == 1 and len(rest) > 0


def test_check_disjoint_refuses_overlap():
    ds = load_squad("builtin:squad-sample")
    with pytest.raises(DataError, match="overlaps evaluation data"):
        check_disjoint(ds, select(ds, part="test"))


# ---- leakage: test-half articles must never reach training, whichever file they come from ----

def test_bundled_sample_trains_only_on_train_half_articles():
    split = json.loads(shared_file("squad-v1.1", "split.json").read_text())
    ds = load_squad("builtin:squad-sample")
    assert set(select(ds, part="train").titles) <= set(split["train"])
    assert set(select(ds, part="test").titles) <= set(split["test"])


@pytest.mark.parametrize("other", [("squad-v2.0", "dev-v2.0-rebuilt.json"), ("squad-v2.0", "dev-v2.0-slice5.json"),
                                   ("spoken-squad", "spoken_test-v1.1.json")])
def test_train_half_of_every_version_shares_nothing_with_the_test_half(other):
    split_file = shared_file("squad-v1.1", "split.json")
    test_half = select(load_squad(shared_file("squad-v1.1", "dev-v1.1.json")), split_file=split_file, part="test")
    other_ds = load_squad(shared_file(*other))
    test_ids = {e.id for e in test_half.examples}
    train_part = select(other_ds, split_file=split_file, part="train")
    assert not test_ids & {e.id.split("_")[0] for e in train_part.examples}
    assert not set(train_part.titles) & set(test_half.titles)
    # and the guard refuses the leak when someone points training at test-half articles
    if set(other_ds.titles) & set(test_half.titles):
        leaked = select(other_ds, split_file=split_file, part="test")
        with pytest.raises(DataError, match="overlaps"):
            check_disjoint(leaked, test_half)

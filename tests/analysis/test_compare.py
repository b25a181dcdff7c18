"""`encoderlab compare`: two QA models on the same questions, known outputs, files, questions YAML, bad input."""
from __future__ import annotations

import json

import pytest
from _helpers import assert_one_line_error
from _helpers import run_cli as run

from encoderlab.analysis import compare as cmp
from encoderlab.data.squad import load_squad, select
from encoderlab.errors import DataError
from encoderlab.metrics.squad import f1_score
from encoderlab.qa.predict import QAPredictionSet

LIMIT = 12
FAST = ["--max-seq-length", "128", "--doc-stride", "32", "--batch-size", "16"]



@pytest.fixture(scope="module")
def sample():
    return select(load_squad("builtin:squad-sample"), part="test", limit=LIMIT)


@pytest.fixture
def model(tiny_qa_run):
    return str(tiny_qa_run[0] / "model")


# --------------------------------------------------------------------------------------------
# labels

def test_model_labels():
    assert cmp.model_label("runs/minilm-squad/model") == "minilm-squad"
    assert cmp.model_label("runs/minilm-squad/model/") == "minilm-squad"
    assert cmp.model_label("builtin:minilm-l6") == "builtin:minilm-l6"
    assert cmp.model_label("some/dir") == "some/dir"
    assert cmp.unique_labels(["a/run1/model", "b/run2/model"]) == ["run1", "run2"]
    assert cmp.unique_labels(["a/run/model", "b/run/model"]) == ["a/run/model", "b/run/model"]
    assert cmp.unique_labels(["x/run/model", "x/run/model"]) == ["run [A]", "run [B]"]


# --------------------------------------------------------------------------------------------
# real tiny model

def test_compare_model_with_itself(capsys, model, tmp_path):
    md = tmp_path / "out" / "cmp.md"
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", LIMIT, "--json", "--markdown", md, *FAST)
    assert code == 0, err
    result = json.loads(out)
    a, b = result["models"]
    assert (a["label"], b["label"]) == ("tiny [A]", "tiny [B]") and a["spec"] == b["spec"] == model
    assert result["questions"] == LIMIT and a["total"] == LIMIT
    assert {k: v for k, v in a.items() if k != "label"} == {k: v for k, v in b.items() if k != "label"}
    assert a["correct"] + a["similar"] + a["incorrect"] == LIMIT
    agreement = result["agreement"]
    assert agreement["answered_differently"] == 0 and agreement["only_correct"] == [0, 0]
    assert agreement["examples"] == [] and agreement["both_correct"] == a["correct"]
    assert agreement["both_correct"] + agreement["neither_correct"] == LIMIT
    assert "asked" not in result
    text = md.read_text()
    assert text.startswith("# Model comparison on `builtin:squad-sample` (part `test`)")
    assert "| model | correct | similar | incorrect | EM | modified EM | F1 |" in text
    assert "answer 0 of 12 questions differently" in text
    assert not list(md.parent.glob(".*.tmp"))        # atomic write leaves no temporary file


# --------------------------------------------------------------------------------------------
# known predictions: model A answers with the gold text, model B with nothing or a padded answer

@pytest.fixture
def known(monkeypatch, sample):
    """Patch the prediction step: 1st model -> first gold answer; 2nd -> gold + ' xyzzy' for 3 questions, else ''."""
    calls = []
    padded = {e.id for e in sample.examples[:3]}

    def fake(model, tokenizer, ds, **kwargs):
        calls.append(ds)
        if len(calls) == 1:
            preds = {e.id: e.answers[0].text for e in ds.examples}
        else:
            preds = {e.id: (e.answers[0].text + " xyzzy" if e.id in padded else "") for e in ds.examples}
        return QAPredictionSet(preds, {}, None, None, 0, 0.0)

    monkeypatch.setattr(cmp, "predict_dataset", fake)
    f1_b = sum(max(f1_score(e.answers[0].text + " xyzzy", a.text) for a in e.answers)
               for e in sample.examples[:3]) / LIMIT * 100
    return calls, padded, f1_b


def test_compare_known_table_json(capsys, model, known):
    calls, padded, f1_b = known
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", LIMIT, "--json", "--examples", 2)
    assert code == 0, err
    assert len(calls) == 2                                 # one prediction run per model, same questions
    assert [e.id for e in calls[0].examples] == [e.id for e in calls[1].examples]
    result = json.loads(out)
    a, b = result["models"]
    assert {k: a[k] for k in ("correct", "similar", "incorrect", "exact", "modified_exact", "f1")} == \
        {"correct": LIMIT, "similar": 0, "incorrect": 0, "exact": 100.0, "modified_exact": 100.0, "f1": 100.0}
    assert {k: b[k] for k in ("correct", "similar", "incorrect", "exact", "modified_exact")} == \
        {"correct": 0, "similar": 3, "incorrect": LIMIT - 3, "exact": 0.0, "modified_exact": 100 * 1.5 / LIMIT}
    assert b["f1"] == pytest.approx(f1_b) and 0 < b["f1"] < 100 * 3 / LIMIT
    ag = result["agreement"]
    assert ag["answered_differently"] == LIMIT and ag["only_correct"] == [LIMIT, 0]
    assert ag["both_correct"] == 0 and ag["neither_correct"] == 0
    assert len(ag["examples"]) == 2                       # --examples 2, only model A is ever the winner
    first = ag["examples"][0]
    assert first["correct"] == [True, False] and first["answers"][1].endswith(" xyzzy")
    assert first["answers"][0] == first["gold"][0]


def test_compare_known_table_terminal_and_markdown(capsys, model, known, tmp_path):
    md = tmp_path / "cmp.md"
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", LIMIT, "--markdown", md)
    assert code == 0, err
    text = md.read_text()
    m = 100 * 1.5 / LIMIT
    assert f"| tiny [A] | {LIMIT} | 0 | 0 | 100.00 | 100.00 | 100.00 |" in text
    assert f"| tiny [B] | 0 | 3 | {LIMIT - 3} | 0.00 | {m:.2f} | {known[2]:.2f} |" in text
    assert f"only tiny [A]: {LIMIT}; only tiny [B]: 0" in text
    assert text.count("✓") == 3 and text.count("✗") == 3    # 3 examples (default), A right and B wrong
    for fragment in ("tiny [A]", "100.00", f"{m:.2f}", "modified EM", "Questions only one model answers correctly",
                     f"answer {LIMIT} of {LIMIT} questions differently", f"Markdown written to {md}"):
        assert fragment in " ".join(out.split()), fragment


@pytest.mark.timeout(300)
def test_compare_overlap_metrics_side_by_side(capsys, model, known, sample, tmp_path):
    """--metrics bleu,rouge: each model's row gains the keys, computed on its own predictions; the Markdown and
    terminal tables show them under the registry's labels."""
    from encoderlab.metrics.overlap import overlap_scores

    md = tmp_path / "cmp.md"
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", LIMIT, "--json", "--metrics", "rouge,bleu", "--markdown", md)
    assert code == 0, err
    a, b = json.loads(out)["models"]
    _, padded, _ = known
    gold = sample.gold()
    preds_a = {e.id: e.answers[0].text for e in sample.examples}
    preds_b = {e.id: (e.answers[0].text + " xyzzy" if e.id in padded else "") for e in sample.examples}
    for row, preds in ((a, preds_a), (b, preds_b)):
        expected = overlap_scores(gold, preds, ["bleu", "rouge"])
        assert set(expected) == {"bleu", "rouge1", "rouge2", "rougeL"}
        assert {k: row[k] for k in expected} == pytest.approx(expected)
    assert a["rouge1"] == pytest.approx(100.0) and 0 < b["rouge1"] < 100 * 3 / LIMIT
    text = md.read_text()
    assert "| model | correct | similar | incorrect | EM | modified EM | F1 | BLEU | ROUGE-1 | ROUGE-2 | ROUGE-L |" in text
    assert f"| {b['bleu']:.2f} | {b['rouge1']:.2f} | {b['rouge2']:.2f} | {b['rougeL']:.2f} |" in text
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", LIMIT, "--metrics", "bleu")
    assert code == 0, err
    assert "BLEU" in out and "ROUGE-1" not in out and f"{b['bleu']:.2f}" in out


# --------------------------------------------------------------------------------------------
# --questions

def write_questions(tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "bowl.txt").write_text("Super Bowl 50 was won by the Denver Broncos, who beat the "
                                               "Carolina Panthers 24 to 10 in Santa Clara.", encoding="utf-8")
    path = tmp_path / "questions.yaml"
    path.write_text("- context: The Eiffel Tower is in Paris, the capital of France.\n"
                    "  question: Where is the Eiffel Tower?\n"
                    "- context_file: ctx/bowl.txt\n"
                    "  question: Who won Super Bowl 50?\n", encoding="utf-8")
    return path


def test_read_questions_file(tmp_path):
    items = cmp.read_questions_file(write_questions(tmp_path))
    assert [i.question for i in items] == ["Where is the Eiffel Tower?", "Who won Super Bowl 50?"]
    assert items[0].source == "inline" and items[1].source == "ctx/bowl.txt"
    assert "Denver Broncos" in items[1].context


def test_compare_questions_top_k(capsys, model, tmp_path):
    questions = write_questions(tmp_path)
    md = tmp_path / "cmp.md"
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", 4, "--questions", questions, "--top-k", 2, "--json", "--markdown", md, *FAST)
    assert code == 0, err
    result = json.loads(out)
    assert result["top_k"] == 2 and len(result["asked"]) == 2
    for item in result["asked"]:
        assert len(item["answers"]) == 2                  # one list per model
        assert item["answers"][0] == item["answers"][1]   # the same model twice
        for answers in item["answers"]:
            assert 1 <= len(answers) <= 2
            assert all({"answer", "score", "start", "end"} <= set(a) and 0 <= a["score"] <= 1 for a in answers)
    assert result["asked"][1]["context"] == "ctx/bowl.txt"
    text = md.read_text()
    assert "## Your questions (top 2)" in text and "**2. Who won Super Bowl 50?** (context: ctx/bowl.txt)" in text
    assert "| rank | tiny [A] | tiny [B] |" in text
    # terminal: the side-by-side tables
    code, out, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--part", "test",
                         "--limit", 4, "--questions", questions, "--top-k", 2, *FAST)
    assert code == 0, err
    assert "1. Where is the Eiffel Tower? (context: inline)" in out and "%)" in out


@pytest.mark.parametrize("content, fragments", [
    ("context: a\nquestion: b\n", ["expected a list of", "found dict"]),
    ("[]\n", ["no questions"]),
    ("- context: a\n  question: b\n- just a string\n", ["item 2 of 2", "expected a mapping"]),
    ("- context: a\n", ["item 1 of 1", "missing or empty 'question'"]),
    ("- context: a\n  question: '  '\n", ["item 1 of 1", "missing or empty 'question'"]),
    ("- question: b\n", ["item 1 of 1", "exactly one of 'context' or 'context_file'"]),
    ("- context: a\n  context_file: f.txt\n  question: b\n", ["exactly one of"]),
    ("- context: a\n  question: b\n- context_file: nope.txt\n  question: c\n", ["item 2 of 2", "nope.txt: no such file"]),
    ("- context: a\n  question: b\n  answer: c\n", ["item 1 of 1", "unknown key(s) answer"]),
    ("- context: 12\n  question: b\n", ["'context' should be text"]),
    ("- context: '   '\n  question: b\n", ["empty context"]),
    ("- context: a\n  question: b: c\n", ["malformed YAML at line 2", "mapping values are not allowed"]),
])
def test_questions_file_errors(tmp_path, content, fragments):
    path = tmp_path / "q.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        cmp.read_questions_file(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))
    for f in fragments:
        assert f in msg, (f, msg)


def test_cli_questions_error_names_item(capsys, model, tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text("- context: a\n  question: b\n- context: c\n", encoding="utf-8")
    code, _, err = run(capsys, "compare", model, model, "--data", "builtin:squad-sample", "--questions", path)
    assert_one_line_error(code, err, "q.yaml: item 2 of 2", "question")


# --------------------------------------------------------------------------------------------
# bad input

def test_base_scratch_model_gets_a_fresh_head_and_a_note(capsys, model, known):
    code, out, err = run(capsys, "compare", "scratch:bert-tiny", model, "--data", "builtin:squad-sample", "--part",
                         "test", "--limit", LIMIT, "--json")
    assert code == 0, err
    assert json.loads(out)["notes"] == [err.strip()[len("note: "):]]
    assert err.startswith("note: scratch:bert-tiny has no trained QA head") and "robustness" not in err


def test_non_qa_classification_directory(capsys, model, tmp_path, tokenizer):
    from transformers import BertForSequenceClassification

    from encoderlab.models import scratch_config

    path = tmp_path / "cls"
    BertForSequenceClassification(scratch_config("bert-tiny", num_labels=2)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    code, _, err = run(capsys, "compare", model, str(path), "--data", "builtin:squad-sample", "--limit", 2)
    assert_one_line_error(code, err, "is a qa model and", "a classify model; compare needs two models of the same task")


@pytest.mark.parametrize("args, fragments", [
    (["--data", "{tmp}/missing.json"], ["missing.json: no such file"]),
    (["--data", "builtin:squad-sample", "--questions", "{tmp}/missing.yaml"], ["missing.yaml: no such file"]),
    (["--data", "builtin:squad-sample", "--part", "nope"], ["no part 'nope'"]),
    (["--data", "builtin:squad-sample", "--limit", "0"], ["--limit must be positive"]),
])
def test_compare_bad_input(capsys, model, tmp_path, args, fragments):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run(capsys, "compare", model, model, *args)
    assert_one_line_error(code, err, *fragments)


def test_compare_missing_model_dir(capsys, model, tmp_path):
    code, _, err = run(capsys, "compare", model, str(tmp_path / "nothing" / "model"), "--data", "builtin:squad-sample")
    assert_one_line_error(code, err, "does not exist")

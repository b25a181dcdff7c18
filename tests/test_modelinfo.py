"""ModelInfo: one typed record of a model's inference settings, read the same way by every consumer."""
from __future__ import annotations

import json

import pytest

from encoderlab.modelinfo import ModelInfo, model_info, write_model_info


@pytest.mark.timeout(10)
def test_round_trip_through_a_config_dict():
    info = ModelInfo(task="classify", labels=["neg", "pos"], max_seq_length=64, truncation="head+tail",
                     head_tokens=16, text_column="sentence", text_pair_column=None, label_column="label")
    saved = json.loads(json.dumps(info.to_dict()))            # what config.json holds
    assert "text_pair_column" not in saved and "trained" not in saved
    assert ModelInfo.from_dict(saved) == info
    assert model_info({"encoderlab": saved}) == info


@pytest.mark.timeout(10)
def test_old_saved_dicts_are_read():
    # an MLM run before ModelInfo: task "pretraining"
    old_mlm = model_info({"encoderlab": {"task": "pretraining", "objective": "mlm+nsp", "corpus": "wiki.txt"},
                          "architectures": ["BertForPreTraining"]})
    assert (old_mlm.task, old_mlm.objective, old_mlm.corpus, old_mlm.head) == ("mlm", "mlm+nsp", "wiki.txt", "mlm+nsp")
    # a QA run of today's trainer: no n-best / answer length recorded -> defaults; unknown keys ignored
    qa = model_info({"encoderlab": {"task": "qa", "squad_version": "2.0", "null_threshold": 1.5,
                                    "max_seq_length": 128, "doc_stride": 32, "max_query_length": 48, "future": 1}})
    assert (qa.max_seq_length, qa.doc_stride, qa.max_query_length) == (128, 32, 48)
    assert (qa.squad_version, qa.null_threshold, qa.with_null) == ("2.0", 1.5, True)
    assert (qa.n_best_size, qa.max_answer_length, qa.trained) == (20, 30, True)
    # a classifier without recorded labels: names from id2label, 128 tokens, head
    clf = model_info({"encoderlab": {"task": "classify"}, "id2label": {"0": "neg", "1": "pos"},
                      "max_position_embeddings": 512})
    assert (clf.labels, clf.max_seq_length, clf.truncation) == (["neg", "pos"], 128, "head")


@pytest.mark.timeout(10)
def test_architecture_fallback_and_base_models():
    hub_qa = model_info({"architectures": ["RobertaForQuestionAnswering"]})
    assert (hub_qa.task, hub_qa.trained, hub_qa.max_seq_length, hub_qa.doc_stride) == ("qa", True, 384, 128)
    assert model_info({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "a", "1": "b"}}).labels == ["a", "b"]
    for spec in ("builtin:minilm-l6", "scratch:bert-tiny", "some-org/some-hub-model"):
        bare = model_info(spec)
        assert (bare.task, bare.head, bare.max_seq_length) == (None, "base", None)
        used = model_info(spec, task="qa")               # a bare encoder used for QA: fresh head, QA defaults
        assert (used.task, used.trained, used.max_seq_length, used.doc_stride, used.max_query_length) == \
            ("qa", False, 384, 128, 64)
    # a model trained for another task keeps its task: the caller refuses it
    assert model_info({"encoderlab": {"task": "classify"}}, task="qa").task == "classify"


@pytest.mark.timeout(10)
def test_override_only_replaces_given_values():
    info = model_info({"encoderlab": {"task": "qa", "max_seq_length": 128, "doc_stride": 32}})
    over = info.override(max_seq_length=256, doc_stride=None)
    assert (over.max_seq_length, over.doc_stride, info.max_seq_length) == (256, 32, 128)


@pytest.mark.timeout(60)
def test_written_by_write_model_info_and_read_from_a_directory(tmp_path):
    from encoderlab.models import load_model

    r = load_model("scratch:bert-tiny", "qa")
    write_model_info(r.model, ModelInfo(task="qa", max_seq_length=96, doc_stride=24, max_query_length=32))
    r.model.save_pretrained(tmp_path / "model")
    (tmp_path / "run.json").write_text("{}")
    for where in (tmp_path, tmp_path / "model"):          # the run directory stands for RUN/model
        info = model_info(str(where))
        assert (info.task, info.max_seq_length, info.doc_stride, info.max_query_length) == ("qa", 96, 24, 32)
    with pytest.raises(ValueError):
        write_model_info(r.model, ModelInfo(task="pretraining"))

"""Hostile inputs to the loaders, readers, configs and CLI: one `error: ...` line, never a traceback
(docs/reliability.md lists each case). The property-based tests generate valid and invalid files."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from _helpers import assert_one_line_error, run_cli
from encoderlab.errors import DataError, EncoderlabError

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
CONTEXT = "Denver Broncos won Super Bowl 50 in 2016."


def squad(qas, title="T", context=CONTEXT, version="1.1"):
    return {"version": version, "data": [{"title": title, "paragraphs": [{"context": context, "qas": qas}]}]}


def qa(qid="q1", question="Who won?", text="Denver Broncos", start=0, **extra):
    return {"id": qid, "question": question, "answers": [{"text": text, "answer_start": start}], **extra}


def write_json(path, obj) -> str:
    path.write_text(json.dumps(obj), encoding="utf-8")   # ensure_ascii: a lone surrogate becomes "\ud800"
    return str(path)


# ---- lone surrogates ---------------------------------------------------------------------------------------------

@pytest.mark.timeout(30)
@pytest.mark.parametrize("obj, fragment", [
    (squad([qa(question="Who \ud800 won?")]), "data[0].paragraphs[0].qas[0] (id q1): 'question': invalid character U+D800"),
    (squad([qa()], context="Denver \udfff Broncos"), "'context': invalid character U+DFFF (a lone surrogate, not text) at position 7"),
    (squad([qa()], title="T\ud800"), "'title': invalid character U+D800"),
    (squad([qa(qid="q\ud800")]), "'id': invalid character U+D800"),
])
def test_squad_lone_surrogate_is_one_line(tmp_path, obj, fragment):
    from encoderlab.data.squad import load_squad

    with pytest.raises(DataError) as exc:
        load_squad(write_json(tmp_path / "d.json", obj))
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.timeout(30)
def test_text_jsonl_lone_surrogate_names_the_line(tmp_path):
    from encoderlab.data.text import load_text_dataset

    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "fine", "label": 1}\n{"text": "bad \\ud800", "label": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl:2: column 'text': invalid character U\+D800 \(a lone surrogate"):
        load_text_dataset(str(p))


@pytest.mark.timeout(60)
def test_cli_data_stats_with_surrogate_is_one_line(tmp_path, capsys):
    path = write_json(tmp_path / "d.json", squad([qa(question="Who \ud800?")]))
    code, _, err = run_cli(capsys, "data", "stats", path, "--model", "scratch:bert-tiny")
    assert_one_line_error(code, err, "d.json", "'question': invalid character U+D800")


@pytest.mark.timeout(120)
def test_question_answerer_refuses_surrogate_context():
    from encoderlab.qa.predict import QuestionAnswerer

    qa_ = QuestionAnswerer("scratch:bert-tiny")
    with pytest.raises(DataError, match=r"^context: invalid character U\+DCFF .* at position 3$"):
        qa_(question="Who?", context="abc\udcff")          # what `--context` gets from undecodable argv bytes


# ---- structure the loaders used to crash on or accept silently ------------------------------------------------------

@pytest.mark.timeout(30)
def test_title_that_is_a_list_is_refused(tmp_path):
    from encoderlab.data.squad import load_squad

    with pytest.raises(DataError, match=r"data\[0\]: 'title' should be str, found list"):
        load_squad(write_json(tmp_path / "d.json", squad([qa()], title=["a", "b"])))
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"id": "1", "question": "Q?", "context": CONTEXT, "title": ["x"],
                             "answers": {"text": ["Denver"], "answer_start": [0]}}) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl:1: 'title' should be str, found list"):
        load_squad(str(p))


@pytest.mark.timeout(30)
def test_impossible_question_with_answers_follows_on_bad_answer(tmp_path):
    from encoderlab.data.squad import load_squad

    path = write_json(tmp_path / "d.json", squad([qa(is_impossible=True), qa("q2")], version="v2.0"))
    ds = load_squad(path)
    assert ds.report.impossible_with_answers == 1
    assert ds.examples[0].answers == [] and ds.gold().answers["q1"] == []
    assert "1 is_impossible questions carried answers" in ds.report.summary()
    with pytest.raises(DataError, match=r"qas\[0\] \(id q1\): is_impossible question has 1 answer\(s\)"):
        load_squad(path, on_bad_answer="error")


# ---- prediction / no-answer files --------------------------------------------------------------------------------

@pytest.mark.timeout(30)
@pytest.mark.parametrize("raw, fragment", [
    ('{"q1": NaN}', "no-answer probability for id 'q1' is nan, expected a finite number"),
    ('{"q1": Infinity}', "no-answer probability for id 'q1' is inf, expected a finite number"),
    ('{"q1": -Infinity}', "no-answer probability for id 'q1' is -inf, expected a finite number"),
])
def test_non_finite_null_odds_are_refused(tmp_path, raw, fragment):
    from encoderlab.metrics.squad import read_na_probs

    p = tmp_path / "na.json"
    p.write_text(raw)
    with pytest.raises(DataError) as exc:
        read_na_probs(p)
    assert str(exc.value) == f"{p}: {fragment}"


@pytest.mark.timeout(60)
def test_cli_evaluate_na_probs_infinity_and_v11(tmp_path, capsys):
    v2 = write_json(tmp_path / "v2.json", squad([qa(), qa("q2", is_impossible=True, answers=[])], version="v2.0"))
    preds = write_json(tmp_path / "p.json", {"q1": "Denver Broncos", "q2": ""})
    na = tmp_path / "na.json"
    na.write_text('{"q1": 0.1, "q2": Infinity}')
    code, out, err = run_cli(capsys, "evaluate", "--data", v2, "--predictions", preds, "--na-probs", na, "--json")
    assert_one_line_error(code, err, "na.json", "'q2' is inf")
    assert out == ""
    v1 = write_json(tmp_path / "v1.json", squad([qa(), qa("q2")]))
    na.write_text('{"q1": 0.1, "q2": 0.9}')
    code, _, err = run_cli(capsys, "evaluate", "--data", v1, "--predictions", preds, "--na-probs", na)
    assert_one_line_error(code, err, "na.json: no-answer probabilities apply to SQuAD v2.0 data", "v1.json is v1.1")


# ---- option values refused before anything is written ---------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("flags, fragment", [
    (["--epochs", "0"], "num_train_epochs (--epochs) must be greater than 0, not 0.0"),
    (["--epochs", "-1"], "num_train_epochs (--epochs) must be greater than 0, not -1.0"),
    (["--eval-batch-size", "0"], "eval_batch_size (--eval-batch-size) must be at least 1, not 0"),
    (["--train-batch-size", "-4"], "train_batch_size (--train-batch-size) must be at least 1, not -4"),
    (["--max-query-length", "0"], "max_query_length (--max-query-length) must be at least 1, not 0"),
    (["--learning-rate", "nan"], "learning_rate (--learning-rate) must be a finite number, not nan"),
    (["--warmup-ratio", "1"], "warmup_ratio (--warmup-ratio) must be less than 1, not 1.0"),
])
def test_cli_train_qa_bad_numbers_write_nothing(tmp_path, capsys, flags, fragment):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "qa", "--model", "scratch:bert-tiny", "--output-dir", out, *flags)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


@pytest.mark.timeout(60)
def test_every_task_config_validates():
    from encoderlab.classify.train import ClassifyTrainConfig
    from encoderlab.mlm.train import PretrainConfig

    with pytest.raises(EncoderlabError, match=r"validation_fraction \(--validation-fraction\) must be less than 1"):
        ClassifyTrainConfig(train="x.tsv", validation_fraction=1.0).validate()
    with pytest.raises(EncoderlabError, match=r"mlm_probability \(--mlm-probability\) must be greater than 0, not 0"):
        PretrainConfig(corpus="c.txt", mlm_probability=0).validate()
    ClassifyTrainConfig(train="x.tsv", num_train_epochs=0, max_steps=3).validate()   # max_steps overrides epochs


@pytest.mark.timeout(60)
def test_cli_evaluate_batch_size_zero_before_loading(tmp_path, capsys):
    code, _, err = run_cli(capsys, "evaluate", "--data", "builtin:squad-sample", "--model", "scratch:bert-tiny",
                           "--batch-size", "0")
    assert_one_line_error(code, err, "--batch-size must be at least 1, not 0")


@pytest.mark.timeout(120)
def test_single_class_after_unstratified_limit(tmp_path):
    from encoderlab.classify.train import ClassifyTrainConfig, train_classify

    p = tmp_path / "d.tsv"
    p.write_text("text\tlabel\n" + "".join(f"good {i}\tpos\n" for i in range(60))
                 + "".join(f"bad {i}\tneg\n" for i in range(60)))
    cfg = ClassifyTrainConfig(model="scratch:bert-tiny", train=str(p), limit=50, stratify=False, max_steps=1,
                              output_dir=str(tmp_path / "r"), precision="fp32")
    with pytest.raises(DataError, match=r"only one class \('pos'\) after --limit 50 --no-stratify"):
        train_classify(cfg, log=lambda m: None)
    assert not (tmp_path / "r").exists()


# ---- corrupt weights ---------------------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_corrupt_safetensors_is_named(tmp_path, capsys):
    from encoderlab.models import load_model

    r = load_model("scratch:bert-tiny", "qa")
    r.model.save_pretrained(tmp_path)
    r.tokenizer.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, _, err = run_cli(capsys, "ask", "--model", tmp_path, "--context", "Rollo led them.", "-q", "Who?")
    assert_one_line_error(code, err, f"{weights}: corrupt weights file")


# ---- sweep files -------------------------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_sweep_file_numbers_written_like_4e_5(tmp_path):
    from encoderlab.sweep.config import load_sweep

    p = tmp_path / "sweep.yaml"
    p.write_text("method: random\nmetric: {name: eval_loss, goal: minimize}\ntask: qa\nparameters:\n"
                 "  learning_rate: {distribution: log_uniform_values, min: 4e-5, max: 1e-3}\n"
                 "  weight_decay: {values: [0, 1e-2]}\n")
    spec = load_sweep(p)
    d = spec.distributions()
    assert (d["learning_rate"].low, d["learning_rate"].high, d["learning_rate"].log) == (4e-5, 1e-3, True)
    assert d["weight_decay"].choices == (0.0, 0.01)


@pytest.mark.timeout(30)
def test_config_file_reads_4e_5_as_a_number(tmp_path):
    from encoderlab.config import build_config
    from encoderlab.qa.train import QATrainConfig

    p = tmp_path / "run.yaml"
    p.write_text("learning_rate: 4e-5\nmax_steps: 3\n")
    assert build_config(QATrainConfig, p, {}).learning_rate == 4e-5


# ---- property-based: loaders and readers raise only one-line EncoderlabErrors -----------------------------------

_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12)
_scalar = st.none() | st.booleans() | st.integers(-5, 50) | st.floats() | _text
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=10)
_answer = st.fixed_dictionaries({"text": _text | st.sampled_from(["Denver", "Broncos", ""]) | _json,
                                 "answer_start": st.integers(-3, 60) | _json})
_qa = st.fixed_dictionaries({"id": _text | st.integers(), "question": _text | _json,
                             "answers": st.lists(_answer, max_size=2) | _json},
                            optional={"is_impossible": st.booleans() | _json, "plausible_answers": _json})
_paragraph = st.fixed_dictionaries({"context": st.sampled_from([CONTEXT, "", " "]) | _text | _json,
                                    "qas": st.lists(_qa, max_size=3) | _json})
_article = st.fixed_dictionaries({"paragraphs": st.lists(_paragraph, max_size=2) | _json},
                                 optional={"title": _text | _json})
_squad = st.fixed_dictionaries({"data": st.lists(_article, max_size=2) | _json},
                               optional={"version": st.sampled_from(["1.1", "v2.0"]) | _json}) | _json


def _one_line(exc: EncoderlabError) -> None:
    assert str(exc) and "\n" not in str(exc), repr(str(exc))


def _dump(obj) -> str:
    return json.dumps(obj, allow_nan=True)      # \ud800 escapes for lone surrogates, NaN/Infinity tokens


@pytest.mark.timeout(120)
@FUZZ
@given(obj=_squad)
@example(obj=squad([qa()], title=["a list"]))                  # was: TypeError unhashable type 'list'
@example(obj=squad([qa(question="\ud800")]))                    # was: TypeError TextInputSequence must be str
def test_fuzz_squad_json_loader(tmp_path_factory, obj):
    from encoderlab.data.squad import load_squad, select

    p = tmp_path_factory.mktemp("f") / "d.json"
    p.write_text(_dump(obj))
    for mode in ("repair", "error"):
        try:
            ds = load_squad(str(p), on_bad_answer=mode)
            assert len(ds) >= 1 and len(select(ds, titles=ds.titles).examples) == len(ds)
            ds.gold()
        except EncoderlabError as exc:
            _one_line(exc)


_row = st.fixed_dictionaries({}, optional={"id": _text | st.integers(), "question": _text | _json,
                                           "context": st.just(CONTEXT) | _text | _json, "title": _text | _json,
                                           "answers": st.fixed_dictionaries({"text": st.lists(_text, max_size=2),
                                                                             "answer_start": st.lists(st.integers(-2, 40), max_size=2)}) | _json,
                                           "is_impossible": st.booleans() | _json})


@pytest.mark.timeout(120)
@FUZZ
@given(rows=st.lists(_row | _json, min_size=0, max_size=4), junk=st.sampled_from(["", "\n", "{", "\n[1,"]))
def test_fuzz_squad_jsonl_loader(tmp_path_factory, rows, junk):
    from encoderlab.data.squad import load_squad

    p = tmp_path_factory.mktemp("f") / "d.jsonl"
    p.write_text("\n".join(_dump(r) for r in rows) + junk)
    try:
        load_squad(str(p))
    except EncoderlabError as exc:
        _one_line(exc)


@pytest.mark.timeout(120)
@FUZZ
@given(rows=st.lists(st.dictionaries(st.sampled_from(["text", "label", "id", "sentence", "x"]), _scalar | _json,
                                     max_size=4) | _json, max_size=4),
       fmt=st.sampled_from(["jsonl", "json", "tsv", "csv"]))
@example(rows=[{"\n": None}], fmt="jsonl")      # was: a column named "\n" split the error message in two lines
def test_fuzz_text_loader(tmp_path_factory, rows, fmt):
    from encoderlab.data.text import build_label_map, encode_labels, load_text_dataset

    p = tmp_path_factory.mktemp("f") / f"d.{fmt}"
    if fmt == "jsonl":
        p.write_text("\n".join(_dump(r) for r in rows))
    elif fmt == "json":
        p.write_text(_dump(rows))
    else:
        sep = "\t" if fmt == "tsv" else ","
        lines = ["text" + sep + "label"] + [sep.join(str(v) for v in (r.values() if isinstance(r, dict) else [r]))
                                            for r in rows]
        p.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        ds = load_text_dataset(str(p), require_labels=False)
        if ds.labels is not None:
            encode_labels(ds, build_label_map(ds.labels))
    except EncoderlabError as exc:
        _one_line(exc)


@pytest.mark.timeout(120)
@FUZZ
@given(obj=st.dictionaries(_text, _scalar, max_size=4) | _json, what=st.sampled_from(["prediction", "no-answer probability"]))
@example(obj={"q1": math.inf}, what="no-answer probability")   # was: accepted, --json printed Infinity
def test_fuzz_prediction_and_null_odds_reader(tmp_path_factory, obj, what):
    from encoderlab.metrics.squad import read_id_map

    p = tmp_path_factory.mktemp("f") / "p.json"
    p.write_text(_dump(obj))
    try:
        out = read_id_map(p, what)
    except EncoderlabError as exc:
        _one_line(exc)
        return
    json.dumps(out, allow_nan=False)          # what was read can always be written back as strict JSON
    for k, v in out.items():
        k.encode("utf-8")
        assert isinstance(v, float) if what != "prediction" else isinstance(v, str)


_param = st.fixed_dictionaries({}, optional={
    "values": st.lists(_scalar, max_size=3) | _json, "value": _scalar, "min": _scalar | st.sampled_from(["4e-5", 1e-5]),
    "max": _scalar | st.sampled_from(["1e-3", 1]), "distribution": st.sampled_from(
        ["uniform", "log_uniform_values", "int_uniform", "q_uniform", "categorical", "constant", "normal"]) | _text,
    "q": _scalar}) | _json


@pytest.mark.timeout(120)
@FUZZ
@example(sweep={"method": "grid", "metric": None, "parameters": {}, "task": [None]})  # was: TypeError unhashable
@given(sweep=st.fixed_dictionaries({"method": st.sampled_from(["grid", "random", "bayes"]) | _text,
                                    "metric": st.fixed_dictionaries({"name": st.sampled_from(["eval_loss", "eval_f1"]) | _text,
                                                                     "goal": st.sampled_from(["minimize", "maximize"]) | _text}) | _json,
                                    "parameters": st.dictionaries(st.sampled_from(["learning_rate", "train_batch_size",
                                                                                   "model", "seed", "nope"]), _param,
                                                                  max_size=3) | _json},
                                   optional={"task": st.sampled_from(["qa", "classify", "x"]) | _json}) | _json)
def test_fuzz_sweep_file_parser(tmp_path_factory, sweep):
    import yaml

    from encoderlab.sweep.config import load_sweep

    p = tmp_path_factory.mktemp("f") / "sweep.yaml"
    try:
        p.write_text(yaml.safe_dump(sweep, allow_unicode=False), encoding="utf-8")
    except (yaml.YAMLError, UnicodeEncodeError):
        return                                      # not representable as a YAML file
    try:
        spec = load_sweep(p)
        spec.distributions()
    except EncoderlabError as exc:
        _one_line(exc)


@pytest.mark.timeout(30)
def test_error_messages_are_one_line_whatever_the_data_brings():
    from encoderlab.errors import DataError

    exc = DataError("d.jsonl: cannot find the text column (columns found: \n, a\rb, c\u2028d)")
    assert str(exc) == "d.jsonl: cannot find the text column (columns found: \\n, a\\rb, c\\u2028d)"
    assert len(str(exc).splitlines()) == 1


@pytest.mark.timeout(30)
def test_config_values_take_the_option_kind_or_are_refused(tmp_path):
    from encoderlab.classify.config import ClassifyTrainConfig
    from encoderlab.config import build_config
    from encoderlab.qa.config import QATrainConfig

    p = tmp_path / "c.yaml"
    p.write_text("train_titles: Normans, Nikola_Tesla\neval_split: 2019\nlearning_rate: 4e-5\n")
    cfg = build_config(QATrainConfig, p, {})
    assert (cfg.train_titles, cfg.eval_split, cfg.learning_rate) == (["Normans", "Nikola_Tesla"], "2019", 4e-5)
    assert build_config(ClassifyTrainConfig, None, {"labels": ["neg", 1]}).labels == ["neg", "1"]
    for text, fragment in (("model: [a, b]\n", "option model: expected a text value"),
                           ("stratify: maybe\n", "option stratify: expected true or false"),
                           ("labels: {a: 1}\n", "option labels: expected a list of names"),
                           ("limit: [3]\n", "option limit: expected a number")):
        p.write_text(text)
        with pytest.raises(EncoderlabError, match=fragment):
            build_config(ClassifyTrainConfig, p, {})

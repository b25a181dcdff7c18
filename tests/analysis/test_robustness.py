"""`encoderlab robustness`: one model on several versions of the same questions."""
from __future__ import annotations

import json

import pytest
from _helpers import shared_file, assert_one_line_error, run_cli as run

from encoderlab.analysis import robustness as rob
from encoderlab.data.squad import load_squad, select
from encoderlab.errors import EncoderlabError
from encoderlab.qa.predict import QAPredictionSet

N = 20
REMOVED = 2          # index of the question version "lower" lacks
FAST = ["--max-seq-length", "128", "--doc-stride", "32", "--batch-size", "16"]



def write_squad(path, examples):
    """Examples -> an official-format SQuAD v1.1 file (articles by title, paragraphs by context)."""
    articles: dict[str, dict[str, list]] = {}
    for e in examples:
        articles.setdefault(e.title, {}).setdefault(e.context, []).append(
            {"id": e.id, "question": e.question,
             "answers": [{"text": a.text, "answer_start": a.answer_start if a.answer_start is not None else 0}
                         for a in e.answers]})
    data = [{"title": t, "paragraphs": [{"context": c, "qas": qas} for c, qas in paras.items()]}
            for t, paras in articles.items()]
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return str(path)


def drop_words(text: str) -> str:
    return " ".join(w for i, w in enumerate(text.split(" ")) if i % 5 != 4)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Three versions of 20 sample questions: the original, a lower-cased one (one question missing, one
    extra "why" question), and one with every 5th context word dropped."""
    from encoderlab.data.squad import Answer, QAExample

    tmp = tmp_path_factory.mktemp("versions")
    ref = select(load_squad("builtin:squad-sample"), part="test", limit=N).examples
    lower = [QAExample(e.id, e.question, e.context.lower(),
                       [Answer(a.text.lower(), a.answer_start) for a in e.answers], e.title)
             for i, e in enumerate(ref) if i != REMOVED]
    word = next(w for w in lower[0].context.split() if len(w) > 3 and w.isalpha())
    extra = QAExample("extra-1", "Why is this question only in one version?", lower[0].context,
                      [Answer(word, lower[0].context.index(word))], lower[0].title)
    lower.insert(1, extra)
    dropped = [QAExample(e.id, e.question, drop_words(e.context), e.answers, e.title) for e in ref]
    renamed = [QAExample("x" + e.id, e.question, e.context, e.answers, e.title) for e in ref]
    write_squad(tmp / "renamed.json", renamed)
    return {"ref": ref, "lower": lower, "dropped": dropped, "renamed": str(tmp / "renamed.json"),
            "files": [("orig", write_squad(tmp / "orig.json", ref)), ("lower", write_squad(tmp / "lower.json", lower)),
                      ("dropped", write_squad(tmp / "dropped.json", dropped))]}


@pytest.fixture
def model(tiny_qa_run):
    return str(tiny_qa_run[0] / "model")


@pytest.fixture
def extractor(monkeypatch, versions):
    """Patch the prediction step: answer with the reference's first gold answer when that exact text is
    in the version's context, else "" — a "model" whose score depends only on the context."""
    answer_of = {e.id: e.answers[0].text for e in versions["ref"]}

    def fake(model, tokenizer, ds, **kwargs):
        preds = {e.id: (answer_of[e.id] if e.id in answer_of and answer_of[e.id] in e.context else "")
                 for e in ds.examples}
        return QAPredictionSet(preds, {}, None, None, 0, 0.0)

    monkeypatch.setattr(rob, "predict_dataset", fake)
    return answer_of


def found_rate(answer_of, examples, ids):
    context = {e.id: e.context for e in examples}
    return 100.0 * sum(answer_of[i] in context[i] for i in ids) / len(ids)


# --------------------------------------------------------------------------------------------
# units

@pytest.mark.parametrize("question, kind", [
    ("What year was it?", "what"), ("In which city, and who, lived?", "which"), ("WHEN did it end?", "when"),
    ("How many?", "how"), ("Whose car is this?", "other"), ("Somewhat odd, isn't it?", "other"),
    ("The man who came?", "who"), ("Where's the key?", "where"), ("why?", "why"), ("Name the river.", "other"),
])
def test_question_type(question, kind):
    assert rob.question_type(question) == kind


def test_parse_version():
    assert rob.parse_version("spoken=data/spoken.json") == ("spoken", "data/spoken.json")
    assert rob.parse_version("s=a=b.json") == ("s", "a=b.json")
    assert rob.parse_version("sample=builtin:squad-sample") == ("sample", "builtin:squad-sample")
    for bad in ("data.json", "=data.json", "name="):
        with pytest.raises(EncoderlabError, match="NAME=FILE"):
            rob.parse_version(bad)


# --------------------------------------------------------------------------------------------
# known scores

def test_known_drops(model, versions, extractor):
    result = rob.robustness(model, versions["files"])
    ref, lower, dropped = versions["ref"], versions["lower"], versions["dropped"]
    removed_id = ref[REMOVED].id
    common = [e.id for e in ref if e.id != removed_id]
    assert result["reference"] == "orig" and result["model"] == "tiny"
    assert result["common"]["questions"] == N - 1

    expected = [100.0, found_rate(extractor, lower, common), found_rate(extractor, dropped, common)]
    assert expected[1] < 100 and expected[2] < 100              # the versions really are harder
    rows = result["common"]["results"]
    assert [r["name"] for r in rows] == ["orig", "lower", "dropped"]
    for r, em in zip(rows, expected):
        assert r["exact"] == pytest.approx(em) and r["f1"] == pytest.approx(em)
        assert r["exact_drop"] == pytest.approx(100.0 - em) and r["f1_drop"] == pytest.approx(100.0 - em)
    assert rows[0]["exact_drop"] == 0.0

    # per question type, over the common questions
    types = {t["type"]: t for t in result["by_type"]}
    assert list(types) == ["what", "who", "how"]               # the fixed order, types present only
    assert sum(t["questions"] for t in types.values()) == N - 1
    for name, group in types.items():
        ids = [i for i in common if rob.question_type(next(e.question for e in ref if e.id == i)) == name]
        assert group["questions"] == len(ids)
        for r, examples in zip(group["results"], (ref, lower, dropped)):
            assert r["exact"] == pytest.approx(found_rate(extractor, examples, ids))

    # questions only some versions have: shown, with their ids
    nia = result["not_in_all"]
    assert nia["questions"] == 2
    assert {(tuple(g["in"]), tuple(g["missing_from"]), tuple(g["ids"])) for g in nia["groups"]} == {
        (("orig", "dropped"), ("lower",), (removed_id,)), (("lower",), ("orig", "dropped"), ("extra-1",))}

    # each version on all its questions: the extra question is answered "" -> wrong
    v = {row["name"]: row for row in result["versions"]}
    assert [v[n]["questions"] for n in ("orig", "lower", "dropped")] == [N, N, N]
    assert [v[n]["not_in_all"] for n in ("orig", "lower", "dropped")] == [1, 1, 1]
    assert v["orig"]["exact"] == 100.0
    assert v["lower"]["exact"] == pytest.approx(expected[1] * (N - 1) / N)
    assert v["dropped"]["exact"] == pytest.approx(found_rate(extractor, dropped, [e.id for e in dropped]))
    assert v["lower"]["correct"] + v["lower"]["similar"] + v["lower"]["incorrect"] == N


def test_limit_keeps_first_common_questions(model, versions, extractor):
    result = rob.robustness(model, versions["files"][:2], limit=5)
    assert result["limit"] == 5 and result["common"]["questions"] == 5
    # the cut keeps the removed question (3rd of the reference) and the extra one (2nd of "lower")
    assert result["not_in_all"]["questions"] == 2
    assert [row["questions"] for row in result["versions"]] == [6, 6]


def test_same_version_twice_has_no_drop(model, versions, extractor):
    path = versions["files"][0][1]
    result = rob.robustness(model, [("a", path), ("b", path)])
    assert [r["exact_drop"] for r in result["common"]["results"]] == [0.0, 0.0]
    assert result["not_in_all"] == {"questions": 0, "groups": []}
    assert "All questions are in every version" in rob.robustness_markdown(result)


def test_markdown_report(model, versions, extractor):
    text = rob.robustness_markdown(rob.robustness(model, versions["files"]))
    assert text.startswith("# Robustness of `tiny`")
    assert f"## Questions common to all versions ({N - 1})" in text
    assert "| orig | 100.00 | 100.00 | — | — |" in text
    assert "| type | questions | version | EM | F1 | EM drop | F1 drop |" in text
    assert "| lower | orig, dropped | 1 | extra-1 |" in text
    assert "## Each version on all its questions" in text


# --------------------------------------------------------------------------------------------
# CLI, real tiny model

def test_cli_real_model(capsys, model, versions, tmp_path):
    md = tmp_path / "rob.md"
    data = [a for name, path in versions["files"] for a in ("--data", f"{name}={path}")]
    code, out, err = run(capsys, "robustness", model, *data, "--json", "--markdown", md, *FAST)
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"model", "model_spec", "reference", "split_file", "part", "limit", "versions", "common",
                           "by_type", "not_in_all", "noise", "notes"}
    assert result["notes"] == []                        # a fine-tuned QA model: no note
    assert result["common"]["questions"] == N - 1 and len(result["common"]["results"]) == 3
    for r in result["common"]["results"]:
        assert set(r) == {"name", "exact", "f1", "exact_drop", "f1_drop", "wer", "generated"}
        assert 0 <= r["exact"] <= r["f1"] <= 100 and r["generated"] is False
    assert result["common"]["results"][0]["wer"] == 0.0 and result["noise"] == []
    assert result["not_in_all"]["questions"] == 2
    assert md.read_text().startswith("# Robustness of `tiny`")
    code, out, err = run(capsys, "robustness", model, *data, *FAST)
    assert code == 0, err
    flat = " ".join(out.split())
    for fragment in ("Questions common to all versions (19)", "By question type", "Questions not in every version",
                     "extra-1", "Each version on all its questions", "reference: orig"):
        assert fragment in flat, fragment


def test_shared_squad_vs_spoken(capsys, model):
    squad = shared_file("squad-v1.1", "dev-v1.1.json")
    split = shared_file("squad-v1.1", "split.json")
    spoken = shared_file("spoken-squad", "spoken_test-v1.1.json")
    code, out, err = run(capsys, "robustness", model, "--data", f"squad={squad}", "--data", f"spoken={spoken}",
                         "--split-file", split, "--part", "test", "--limit", 30, "--json", *FAST)
    assert code == 0, err
    result = json.loads(out)
    assert result["common"]["questions"] == 30
    assert [r["name"] for r in result["common"]["results"]] == ["squad", "spoken"]
    squad_row, spoken_row = result["versions"]
    assert spoken_row["questions"] == 30 and spoken_row["not_in_all"] == 0     # Spoken-SQuAD ⊂ SQuAD dev
    assert squad_row["questions"] == 30 + squad_row["not_in_all"] and squad_row["not_in_all"] > 0
    assert result["not_in_all"]["questions"] == squad_row["not_in_all"]
    assert [g["in"] for g in result["not_in_all"]["groups"]] == [["squad"]]
    assert sum(t["questions"] for t in result["by_type"]) == 30
    assert all(len(t["results"]) == 2 for t in result["by_type"])


# --------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("args, fragments", [
    (["--data", "{orig}"], ["NAME=FILE"]),
    (["--data", "a={orig}"], ["at least 2 versions", "got 1"]),
    (["--data", "a={orig}", "--data", "a={lower}"], ["a given more than once"]),
    (["--data", "a={orig}", "--data", "b={tmp}/missing.json"], ["missing.json: no such file"]),
    (["--data", "a={orig}", "--data", "b={renamed}"], ["share no question ids", "a: 20 questions"]),
    (["--data", "a={orig}", "--data", "b={lower}", "--limit", "0"], ["--limit must be positive"]),
])
def test_bad_input(capsys, model, versions, tmp_path, args, fragments):
    files = dict(versions["files"])
    args = [a.replace("{orig}", files["orig"]).replace("{lower}", files["lower"]).replace("{tmp}", str(tmp_path))
            .replace("{renamed}", versions["renamed"]) for a in args]
    code, _, err = run(capsys, "robustness", model, *args)
    assert_one_line_error(code, err, *fragments)


def test_base_model_gets_a_fresh_head_and_a_note(capsys, versions, extractor):
    files = dict(versions["files"])
    code, out, err = run(capsys, "robustness", "scratch:bert-tiny", "--data", f"a={files['orig']}",
                         "--data", f"b={files['lower']}", "--json")
    assert code == 0, err
    assert err.startswith("note: scratch:bert-tiny has no trained QA head")
    assert json.loads(out)["notes"] == [err.strip()[len("note: "):]]


# --------------------------------------------------------------------------------------------
# WER: synthetic noise levels (--noise), files from `data noise`, the F1-against-WER plot

def _contexts(path):
    data = json.loads(open(path, encoding="utf-8").read())
    return {q["id"]: p["context"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]}


@pytest.mark.timeout(600)
def test_noise_levels_wer_and_plot(capsys, model, tmp_path):
    import jiwer

    from encoderlab.data.noise import noise_file, normalise
    from encoderlab.data.squad import builtin_path

    files = {}
    for w in (0.1, 0.3):
        files[w] = tmp_path / f"wer{w}.json"
        noise_file("builtin:squad-sample", str(files[w]), w, seed=0, part="test")
    png = tmp_path / "f1_vs_wer.png"
    code, out, err = run(capsys, "robustness", model, "--data", "squad=builtin:squad-sample",
                         "--data", f"n10={files[0.1]}", "--data", f"n30={files[0.3]}", "--part", "test",
                         "--split-file", builtin_path("squad-sample")[1],
                         "--noise", "0.1,0.3", "--plot", png, "--json", *FAST)
    assert code == 0, err
    result = json.loads(out)
    rows = {r["name"]: r for r in result["common"]["results"]}
    assert list(rows) == ["squad", "n10", "n30", "wer=0.1", "wer=0.3"]
    assert [r["generated"] for r in rows.values()] == [False, False, False, True, True]
    # each version's WER is jiwer's on the files' contexts of the common questions (distinct context pairs)
    ref = _contexts(builtin_path("squad-sample")[0])
    versions = {name: _contexts(files[w]) for name, w in (("n10", 0.1), ("n30", 0.3))}
    common = [i for i in ref if all(i in v for v in versions.values())]
    assert result["common"]["questions"] == len(common)
    for name, ctx in versions.items():
        pairs = list(dict.fromkeys((ref[i], ctx[i]) for i in common))
        expected = jiwer.wer([normalise(r) for r, _ in pairs], [normalise(h) for _, h in pairs])
        assert rows[name]["wer"] == pytest.approx(expected, abs=1e-12)
    assert rows["squad"]["wer"] == 0.0 and 0.05 < rows["n10"]["wer"] < rows["n30"]["wer"] < 0.4
    # --noise levels (seed 0) in memory are the same data sets as the files written by `data noise` with seed 0
    for level, name in (("wer=0.1", "n10"), ("wer=0.3", "n30")):
        assert (rows[level]["wer"], rows[level]["exact"], rows[level]["f1"]) == \
            (rows[name]["wer"], rows[name]["exact"], rows[name]["f1"])
    assert [n["name"] for n in result["noise"]] == ["wer=0.1", "wer=0.3"]
    assert all(abs(n["measured_wer"] - w) <= 0.01 for n, w in zip(result["noise"], (0.1, 0.3)))
    assert result["plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args, fragments", [
    (["--noise", "1.5"], ["--noise must be between 0 and 1", "1.5"]),
    (["--noise", "0.1,x"], ["--noise takes word error rates", "'x'"]),
    (["--noise", "0.1", "--plot", "{tmp}/f.jpg"], ["--plot writes a PNG", "f.jpg"]),
])
def test_bad_noise_options(capsys, versions, tmp_path, args, fragments):
    files = dict(versions["files"])
    code, _, err = run(capsys, "robustness", "scratch:bert-tiny", "--data", f"a={files['orig']}",
                       *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_one_line_error(code, err, *fragments)

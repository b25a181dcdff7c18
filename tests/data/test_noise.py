"""Synthetic ASR noise (`encoderlab data noise`, encoderlab.data.noise): rate, closeness, answers, formats."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest
from _helpers import assert_one_line_error, run_cli, shared_file

from encoderlab.data import noise as nz
from encoderlab.data.squad import load_squad, select

SCRIPT = Path(sys.executable).with_name("encoderlab")


@pytest.fixture(scope="module")
def train_half():
    """Three train-half articles of SQuAD v1.1 dev (never test-half articles: those are for reporting)."""
    ds = select(load_squad(str(shared_file("squad-v1.1", "dev-v1.1.json"))),
                split_file=shared_file("squad-v1.1", "split.json"), part="train")
    titles = ds.titles[:3]
    return ds.subset([e for e in ds.examples if e.title in titles])


def jiwer_wer(refs, hyps) -> float:
    """WER straight from jiwer on lowercase words (independent of encoderlab's helpers)."""
    import re

    def words(t):
        return " ".join(re.findall(r"\w+(?:['’]\w+)*", t.lower()))
    return jiwer.wer([words(r) for r in refs], [words(h) for h in hyps])


@pytest.mark.timeout(60)
def test_soundex_known_codes():
    assert [nz.soundex(w) for w in ("Robert", "Rupert", "Rubin", "Ashcraft", "Tymczak", "Pfister", "Honeyman")] == \
        ["R163", "R163", "R150", "A261", "T522", "P236", "H555"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", [0.1, 0.22, 0.44, 0.54])
def test_measured_wer_within_tolerance_on_real_data(train_half, target):
    noisy, report = nz.noise_qa(train_half, target, seed=0)
    assert abs(report.measured_wer - target) <= 0.01, report.to_dict()
    # the figure it reports is jiwer's on the contexts it wrote
    contexts = list(dict.fromkeys(e.context for e in train_half.examples))
    texts, _ = nz.noise_texts(contexts, target, seed=0)
    assert report.measured_wer == pytest.approx(jiwer_wer(contexts, [t.text for t in texts]), abs=1e-12)
    assert report.substitutions > report.insertions > report.deletions > 0


@pytest.mark.timeout(120)
def test_answers_kept_relocated_lost_counts(train_half):
    noisy, report = nz.noise_qa(train_half, 0.3, seed=1)
    contexts = list(dict.fromkeys(e.context for e in train_half.examples))
    texts, _ = nz.noise_texts(contexts, 0.3, seed=1)
    new_context = {c: t.text for c, t in zip(contexts, texts)}
    out = {e.id: e for e in noisy.examples}
    lost = dropped = 0
    for e in train_half.examples:
        ctx = new_context[e.context]
        kept = out.get(e.id)
        if kept is None:
            dropped += 1
        else:
            assert kept.context == ctx
            for a in kept.answers:        # every surviving answer is exactly at its answer_start
                assert kept.context[a.answer_start:a.answer_start + len(a.text)] == a.text
        survivors = {(a.text, a.answer_start) for a in kept.answers} if kept else set()
        for a in e.answers:
            if a.text not in ctx:          # independent: an answer whose text is gone is lost
                lost += 1
                assert all(t != a.text for t, _ in survivors)
    assert (report.answers_lost, report.questions_dropped) == (lost, dropped)
    assert report.answers_kept + report.answers_relocated + report.answers_lost == sum(len(e.answers) for e in train_half.examples)
    assert report.answers_relocated > 0 and report.answers_kept > report.answers_lost > 0
    assert len(noisy) == len(train_half) - dropped


@pytest.mark.timeout(60)
def test_kept_answer_moves_with_the_edits():
    text = "Alpha beta gamma delta epsilon zeta eta theta"
    # delete "beta", insert after "gamma": "delta epsilon" shifts by -5 + 4
    n = nz._apply(text, {1: ("del", ""), 2: ("ins", "and")})
    assert n.text == "Alpha gamma and delta epsilon zeta eta theta"
    start = text.index("delta epsilon")
    assert nz.relocate(n, "delta epsilon", start) == (n.text.index("delta epsilon"), "kept")
    assert nz.relocate(n, "Alpha beta", 0) == (None, "lost")
    n = nz._apply("one two. two three", {1: ("sub", "too")})
    assert n.text == "one too. two three"
    assert nz.relocate(n, "two", 4) == (9, "relocated")      # its own copy edited: the other occurrence
    assert nz._apply("First word here.", {0: ("del", "")}).text == "word here."


@pytest.mark.timeout(120)
def test_substitutions_are_close_words(train_half):
    contexts = list(dict.fromkeys(e.context for e in train_half.examples))
    texts, report = nz.noise_texts(contexts, 0.2, seed=3, proportions=(1, 0, 0))
    assert report.deletions == report.insertions == 0 and report.substitutions > 1000
    pairs = [(a, b) for c, t in zip(contexts, texts)
             for a, b in zip(nz.WORD.findall(c), nz.WORD.findall(t.text), strict=True) if a != b]
    assert len(pairs) == report.substitutions
    assert all(nz.is_close(a, b) for a, b in pairs), [p for p in pairs if not nz.is_close(*p)][:5]
    assert not nz.is_close("gamma", "zeta") and nz.is_close("Broncos", "bronco") and nz.is_close("their", "there")
    # the replacement takes the case pattern of the word it replaces
    assert all(b[0].isupper() for a, b in pairs if a[0].isupper())


@pytest.mark.timeout(120)
def test_same_seed_same_bytes(tmp_path):
    outs = []
    for name, seed in (("a.json", 7), ("b.json", 7), ("c.json", 8)):
        nz.noise_file("builtin:squad-sample", str(tmp_path / name), 0.22, seed=seed, part="test")
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] and outs[0] != outs[2]
    data = json.loads(outs[0])
    assert data["version"] == "1.1" and data["data"][0]["paragraphs"][0]["qas"][0]["answers"]


@pytest.mark.timeout(120)
def test_squad_json_is_parsed_once(tmp_path, monkeypatch):
    """A SQuAD .json is read and parsed once: the test for QA data and the loading share the object."""
    from encoderlab.data import io as data_io
    from encoderlab.data import squad as data_squad
    from encoderlab.data.squad import builtin_path

    src = tmp_path / "dev.json"
    src.write_bytes(builtin_path("squad-sample")[0].read_bytes())
    reads = []
    real = data_io.read_json
    counting = lambda path, *a, **k: reads.append(Path(path)) or real(path, *a, **k)  # noqa: E731
    for module in (data_io, data_squad):        # squad.py holds its own name for it
        monkeypatch.setattr(module, "read_json", counting)
    r = nz.noise_file(str(src), str(tmp_path / "noisy.json"), 0.2, seed=0)
    assert reads == [src]
    assert r["kind"] == "qa"
    noisy_ids = [e.id for e in load_squad(str(tmp_path / "noisy.json")).examples]
    source_ids = [e.id for e in load_squad(str(src)).examples]
    assert r["questions"] == len(source_ids) and len(noisy_ids) == len(source_ids) - r["questions_dropped"]
    assert set(noisy_ids) < set(source_ids)


@pytest.mark.timeout(120)
def test_text_data_mode_keeps_format_and_labels(tmp_path):
    sst = shared_file("sst2", "dev.tsv")
    lines = sst.read_text(encoding="utf-8").splitlines()[:201]
    src = tmp_path / "dev.tsv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = nz.noise_file(str(src), str(tmp_path / "noisy.tsv"), 0.2, seed=0)
    assert r["kind"] == "text" and abs(r["measured_wer"] - 0.2) <= 0.01
    out = (tmp_path / "noisy.tsv").read_text(encoding="utf-8").splitlines()
    assert out[0] == lines[0] == "sentence\tlabel"
    assert [o.split("\t")[1] for o in out[1:]] == [line.split("\t")[1] for line in lines[1:]]
    assert r["measured_wer"] == pytest.approx(jiwer_wer([line.split("\t")[0] for line in lines[1:]],
                                                        [o.split("\t")[0] for o in out[1:]]), abs=1e-12)
    # plain text and JSON lines too
    (tmp_path / "t.txt").write_text("the film was a delight from start to finish\nnothing works in this dull story\n")
    nz.noise_file(str(tmp_path / "t.txt"), str(tmp_path / "n.txt"), 0.25, seed=0)
    assert len((tmp_path / "n.txt").read_text().splitlines()) == 2
    rows = [{"id": i, "text": t, "label": i % 2} for i, t in enumerate(["a good movie with great acting",
                                                                        "bad plot and worse dialogue"])]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    nz.noise_file(str(tmp_path / "t.jsonl"), str(tmp_path / "n.jsonl"), 0.5, seed=0)
    got = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert [(g["id"], g["label"]) for g in got] == [(0, 0), (1, 1)] and [g["text"] for g in got] != [r["text"] for r in rows]



@pytest.mark.timeout(120)
def test_untouched_fields_round_trip_byte_for_byte(tmp_path):
    """Columns that are not noised come back as they were: bare quotes and backslashes in a TSV (GLUE files
    have them; they were once written escaped as \\" and \\\\), and a JSON list inside {"data": [...]}."""
    from encoderlab.data.text import load_text_dataset

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text('sentence\tnote\tlabel\nhe said "hi" to a\\b and left the room\t"quoted" c:\\dir\t1\n'
                   'she was not happy with the result at all\tplain\t0\n', encoding="utf-8")
    nz.noise_file(str(tsv), str(tmp_path / "noisy.tsv"), 0.3, seed=0, text_columns=["sentence"])
    out = (tmp_path / "noisy.tsv").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[1:] for line in out] == [["note", "label"], ['"quoted" c:\\dir', "1"], ["plain", "0"]]
    assert load_text_dataset(str(tmp_path / "noisy.tsv")).labels == load_text_dataset(str(tsv)).labels

    rows = [{"text": "a good movie with great acting and music", "label": 1},
            {"text": "bad plot and worse dialogue all along", "label": 0}]
    (tmp_path / "w.json").write_text(json.dumps({"data": rows}))
    nz.noise_file(str(tmp_path / "w.json"), str(tmp_path / "nw.json"), 0.3, seed=0)
    got = json.loads((tmp_path / "nw.json").read_text())
    assert isinstance(got, dict) and [r["label"] for r in got["data"]] == [1, 0]
    (tmp_path / "l.json").write_text(json.dumps(rows))
    nz.noise_file(str(tmp_path / "l.json"), str(tmp_path / "nl.json"), 0.3, seed=0)
    assert [r["label"] for r in json.loads((tmp_path / "nl.json").read_text())] == [1, 0]

def run_script(*args):
    if not SCRIPT.exists():
        pytest.skip(f"no installed console script at {SCRIPT}")
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(300)
def test_cli_console_script(tmp_path):
    out = tmp_path / "noisy.json"
    proc = run_script("data", "noise", "builtin:squad-sample", "--wer", "0.22", "-o", out, "--part", "test", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "target WER 0.2200, measured WER 0.2" in proc.stdout and "relocated" in proc.stdout
    r = nz.noise_file("builtin:squad-sample", str(tmp_path / "again.json"), 0.22, seed=3, part="test")
    assert out.read_bytes() == (tmp_path / "again.json").read_bytes()
    assert (f"answers: {r['answers_kept']:,} kept, {r['answers_relocated']:,} relocated, {r['answers_lost']:,} lost"
            in proc.stdout)
    for bad in ("1.5", "-0.1", "nan"):
        proc = run_script("data", "noise", "builtin:squad-sample", "--wer", bad, "-o", tmp_path / "x.json")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines() == [f"error: --wer must be between 0 and 1 (a word error rate), not {bad}"]
        assert not (tmp_path / "x.json").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("args,fragments", [
    (["--wer", "0.2", "-o", "{tmp}/out.tsv"], ["QA data is written as SQuAD .json or .jsonl"]),
    (["--wer", "0.2", "-o", "{tmp}/missing/out.json"], ["cannot write", "does not exist"]),
    (["--wer", "0.2", "-o", "{tmp}/out.json", "--proportions", "1,2"], ["--proportions takes three"]),
    (["--wer", "0.2", "-o", "{tmp}/out.json", "--proportions", "a,b,c"], ["--proportions takes three numbers"]),
    (["--wer", "0.2", "-o", "{tmp}/out.json", "--part", "nope"], ["no part 'nope'"]),
])
def test_bad_input_one_line(capsys, tmp_path, args, fragments):
    code, _, err = run_cli(capsys, "data", "noise", "builtin:squad-sample", *[a.format(tmp=tmp_path) for a in args])
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("content,args,fragments", [
    ("sentence\tlabel\n!!! ...\t1\n", ["-o", "{tmp}/out.tsv"], ["no words to noise"]),
    ("sentence\tlabel\na b c\t1\n", ["-o", "{tmp}/out.csv"], ["text data keeps its format", ".tsv"]),
    ("sentence\tlabel\na b c\t1\n", ["-o", "{tmp}/out.tsv", "--text-column", "review"], ["no column review"]),
    ("sentence\tlabel\na b c\t1\n", ["-o", "{tmp}/in.tsv"], ["is the input file"]),
    ("sentence\tlabel\na b c\t1\n", ["-o", "{tmp}/out.tsv", "--part", "test"], ["text data has none"]),
])
def test_bad_text_input_one_line(capsys, tmp_path, content, args, fragments):
    src = tmp_path / "in.tsv"
    src.write_text(content, encoding="utf-8")
    code, _, err = run_cli(capsys, "data", "noise", src, "--wer", "0.2", *[a.format(tmp=tmp_path) for a in args])
    assert_one_line_error(code, err, *fragments)
    assert src.read_text(encoding="utf-8") == content and not (tmp_path / "out.tsv").exists()


@pytest.mark.timeout(60)
def test_hub_spec_refused_in_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", "noise", "hub:squad", "--wer", "0.2", "-o", tmp_path / "o.json")
    assert_one_line_error(code, err, "hub:squad", "not Hub data sets")

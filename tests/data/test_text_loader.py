"""Text classification data: formats, column detection, label maps, stratification, bad files."""
from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest
from _helpers import shared_file

from encoderlab.data.text import (build_label_map, carve_validation, encode_labels, limit_dataset,
                                  load_text_dataset, stratified_indices)
from encoderlab.errors import DataError


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_sst2_train_and_unlabelled_test_files():
    train = load_text_dataset(shared_file("sst2", "dev.tsv"))
    assert len(train) == 872 and train.text_column == "sentence" and train.label_column == "label"
    assert set(train.labels) == {"0", "1"} and train.texts[0].startswith("it 's a charming")
    assert train.where[0].endswith("dev.tsv:2")                  # line 1 is the header
    test = load_text_dataset(shared_file("sst2", "test.tsv"), require_labels=False)
    assert len(test) == 1821 and test.labels is None and test.ids[:2] == ["0", "1"]
    with pytest.raises(DataError, match=r"test\.tsv: cannot find the label column \(columns found: index, sentence\)"):
        load_text_dataset(shared_file("sst2", "test.tsv"))


@pytest.fixture(scope="module")
def imdb_test():
    return load_text_dataset(shared_file("imdb", "test.jsonl.gz"))


def test_imdb_jsonl_gz_with_integer_labels(imdb_test):
    ds = imdb_test                     # holds raw U+0085 inside JSON strings: lines split on "\n" only
    assert len(ds) == 25000 and ds.text_column == "text" and ds.ids[0] == "test/neg/0"
    assert ds.class_counts() == {"0": 12500, "1": 12500}


def test_csv_with_quotes_custom_columns_and_pairs(tmp_path):
    f = write(tmp_path / "d.csv", 'premise,hypothesis,gold_label\n"A man, tall",A person,entailment\n'
                                  'Cats sleep,"Dogs ""bark""",neutral\n')
    ds = load_text_dataset(f)
    assert ds.texts == ["A man, tall", "Cats sleep"] and ds.pairs == ["A person", 'Dogs "bark"']
    assert ds.labels == ["entailment", "neutral"]
    f2 = write(tmp_path / "r.tsv", "body\tstars\nfine\t5\nbad\t1\n")
    ds2 = load_text_dataset(f2, text_column="body", label_column="stars")
    assert ds2.texts == ["fine", "bad"] and ds2.labels == ["5", "1"]


def test_jsonl_and_json_list(tmp_path):
    f = tmp_path / "d.jsonl.gz"
    f.write_bytes(gzip.compress(b'{"review": "ok", "sentiment": "pos"}\n\n{"review": "meh", "sentiment": "neg"}\n'))
    ds = load_text_dataset(f)
    assert ds.texts == ["ok", "meh"] and ds.labels == ["pos", "neg"] and ds.where[1].endswith(":3")
    j = write(tmp_path / "d.json", json.dumps([{"text": "a", "label": 1.0}, {"text": "b", "label": 0}]))
    assert load_text_dataset(j).labels == ["1", "0"]


def test_plain_text_file_is_unlabelled_texts(tmp_path):
    ds = load_text_dataset(write(tmp_path / "t.txt", "first review\n\n  second one \n"), require_labels=False)
    assert ds.texts == ["first review", "second one"] and ds.labels is None and ds.where[1].endswith("t.txt:3")


def test_label_map_order():
    assert build_label_map(["pos", "neg", "pos"]) == ["neg", "pos"]
    assert build_label_map(["10", "2", "1"]) == ["1", "2", "10"]            # integers numerically
    assert build_label_map(["pos", "neg"], fixed=["pos", "neg"]) == ["pos", "neg"]
    with pytest.raises(DataError, match="once"):
        build_label_map(["a"], fixed=["a", "a"])


def test_unknown_label_names_its_line(tmp_path):
    ds = load_text_dataset(write(tmp_path / "d.tsv", "text\tlabel\nfine\tpos\nodd\tmaybe\n"))
    assert encode_labels(ds.subset([0]), ["neg", "pos"]).tolist() == [1]
    with pytest.raises(DataError, match=r"d\.tsv:3: unknown label 'maybe' \(the label map is: neg, pos\)"):
        encode_labels(ds, ["neg", "pos"])


@pytest.mark.parametrize("content, fragment", [
    ("", "empty file"),
    ("sentence\tlabel\n", "no rows"),
    ("words\tlabel\nhi\t1\n", "cannot find the text column (columns found: words, label)"),
    ("sentence\tlabel\nhi\t1\nthere\n", "d.tsv:3: expected 2 fields (sentence, label), found 1"),
    ("sentence\tlabel\n \t1\n", "d.tsv:2: empty text in column 'sentence'"),
    ("sentence\tlabel\nhi\t\n", "d.tsv:2: empty label in column 'label'"),
])
def test_bad_delimited_files(tmp_path, content, fragment):
    with pytest.raises(DataError) as err:
        load_text_dataset(write(tmp_path / "d.tsv", content))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_jsonl_and_other_files(tmp_path):
    with pytest.raises(DataError, match=r"d\.jsonl:2: missing field 'label'"):
        load_text_dataset(write(tmp_path / "d.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n'))
    with pytest.raises(DataError, match=r"e\.jsonl:1: malformed JSON"):
        load_text_dataset(write(tmp_path / "e.jsonl", '{"text": \n'))
    with pytest.raises(DataError, match=r"f\.jsonl:1: field 'text' must be text, not int"):
        load_text_dataset(write(tmp_path / "f.jsonl", '{"text": 3, "label": 1}\n'))
    bad = tmp_path / "u.tsv"
    bad.write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(DataError, match=r"u\.tsv: not valid UTF-8 at byte \d+ \(line 2\)"):
        load_text_dataset(bad)
    with pytest.raises(DataError, match="no such file"):
        load_text_dataset(tmp_path / "missing.tsv")
    with pytest.raises(DataError, match="no text column 'body' \\(columns found: sentence, label\\)"):
        load_text_dataset(write(tmp_path / "g.tsv", "sentence\tlabel\nx\t1\n"), text_column="body")
    with pytest.raises(DataError, match="unknown data format"):
        load_text_dataset(write(tmp_path / "h.xml", "<a/>"))


def test_hub_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"hub:no-such/dataset-xyz:train: could not be loaded .*offline"):
        load_text_dataset("hub:no-such/dataset-xyz:train")


def test_stratified_limit_keeps_proportions_and_is_deterministic():
    labels = ["a"] * 700 + ["b"] * 200 + ["c"] * 100
    idx = stratified_indices(labels, 50, seed=1)
    assert len(idx) == 50 and idx == sorted(idx) == stratified_indices(labels, 50, seed=1)
    assert Counter(labels[i] for i in idx) == {"a": 35, "b": 10, "c": 5}
    assert stratified_indices(labels, 50, seed=2) != idx
    odd = stratified_indices(labels, 7, seed=0)              # 4.9 / 1.4 / 0.7 -> largest remainders
    assert Counter(labels[i] for i in odd) == {"a": 5, "b": 1, "c": 1}


def test_imdb_stratified_limit_vs_first_rows(imdb_test):
    ds = imdb_test
    first = limit_dataset(ds, 100, stratify=False)
    assert first.class_counts() == {"0": 100}                 # the file is sorted by label
    strat = limit_dataset(ds, 100, stratify=True, seed=3)
    assert strat.class_counts() == {"0": 50, "1": 50}


def test_validation_carve_out_is_stratified_and_disjoint():
    ds = load_text_dataset(shared_file("sst2", "dev.tsv"))
    train, val = carve_validation(ds, 0.25, seed=0)
    assert len(train) + len(val) == len(ds) and not set(train.ids) & set(val.ids)
    full, part = ds.class_counts(), val.class_counts()
    for label in full:
        assert abs(part[label] / len(val) - full[label] / len(ds)) < 0.01
    with pytest.raises(DataError, match="between 0 and 1"):
        carve_validation(ds, 1.5)

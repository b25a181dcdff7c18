"""Reading pretraining corpora: WikiText conventions, JSONL fields, directories, held-out documents, errors."""
from __future__ import annotations

import gzip
import json

import pytest

from encoderlab.errors import DataError
from encoderlab.mlm.corpus import hold_out, load_corpus, parse_text, split_sentences

WIKI = """ = Valkyria Chronicles III = 

 Senjō no Valkyria 3 is a tactical role @-@ playing video game . It was released in 2011 .
 It continued the story .

 = = Gameplay = = 

 As with previous games , the player controls units .

 = Tower Building = 

 The Tower Building is located in Little Rock .
"""


def test_wikitext_headings_start_documents_and_blank_lines_end_paragraphs(tmp_path):
    path = tmp_path / "wiki.train.raw"
    path.write_text(WIKI, encoding="utf-8")
    corpus = load_corpus(str(path))
    assert [d.title for d in corpus.documents] == ["Valkyria Chronicles III", "Tower Building"]
    first = corpus.documents[0]
    # lines of one paragraph are joined; the sub-heading ends a paragraph and is not text
    assert first.paragraphs == ["Senjō no Valkyria 3 is a tactical role @-@ playing video game . It was released "
                                "in 2011 . It continued the story .",
                                "As with previous games , the player controls units ."]
    assert first.source == f"{path}:1" and corpus.documents[1].source == f"{path}:10"
    assert not any("=" in p for d in corpus.documents for p in d.paragraphs)


def test_plain_text_without_headings_blank_lines_separate_documents():
    docs = parse_text("one line\nsame paragraph\n\n\nsecond doc\n\nthird\n", "x.txt")
    assert [d.paragraphs for d in docs] == [["one line same paragraph"], ["second doc"], ["third"]]
    assert [d.source for d in docs] == ["x.txt:1", "x.txt:5", "x.txt:7"]


def test_deeper_headings_are_sections_not_documents():
    docs = parse_text(" = A = \n\n text a\n = = = Deep = = = \n more a\n = B = \n text b\n", "w")
    assert [(d.title, d.paragraphs) for d in docs] == [("A", ["text a", "more a"]), ("B", ["text b"])]


def test_jsonl_text_field_html_breaks_and_gzip(tmp_path):
    rows = [{"id": 1, "body": "First para.<br /><br />Second para."}, {"id": 2, "body": ""},
            {"id": 3, "body": "Line with \u0085 NEL and \u2028 separator inside."}]
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    corpus = load_corpus(str(path), text_field="body")
    assert [d.paragraphs for d in corpus.documents] == [["First para.", "Second para."],
                                                        ["Line with NEL and separator inside."]]
    assert corpus.documents[1].source == f"{path}:3"


def test_missing_text_field_names_file_line_and_fields(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "ok"}\n{"review": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.jsonl:2: no 'text' field \(fields: review\)"):
        load_corpus(str(path))
    path.write_text('{"text": ["not", "a string"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.jsonl:1: field 'text' is a list"):
        load_corpus(str(path))
    path.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.jsonl:2: malformed JSON"):
        load_corpus(str(path))


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b" = Only A Heading = \n\n"])
def test_empty_corpus_is_one_clear_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"empty\.txt: no text found \(empty corpus\)"):
        load_corpus(str(path))


def test_bad_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine line\nsecond \xff\xfe line\n")
    with pytest.raises(DataError, match=r"bad\.txt: not valid UTF-8 at byte 17 \(line 2\)"):
        load_corpus(str(path))


def test_missing_file_directory_and_limit(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load_corpus(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="no corpus files"):
        load_corpus(str(tmp_path))
    (tmp_path / "b.txt").write_text("doc b1\n\ndoc b2\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"text": "doc a"}\n', encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("x,y\n", encoding="utf-8")
    corpus = load_corpus(str(tmp_path))
    assert [d.text for d in corpus.documents] == ["doc a", "doc b1", "doc b2"]
    assert [d.text for d in load_corpus(str(tmp_path), limit=2).documents] == ["doc a", "doc b1"]


def test_hub_offline_is_one_clear_error():
    with pytest.raises(DataError, match=r"hub:no-such-dataset-xyz: could not be loaded from the Hugging Face Hub"):
        load_corpus("hub:no-such-dataset-xyz")


def test_hold_out_whole_documents(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("\n\n".join(f"document {i}" for i in range(40)), encoding="utf-8")
    corpus = load_corpus(str(path))
    train, held = hold_out(corpus, 0.1, seed=0)
    assert len(held) == 4 and len(train) == 36
    assert not {d.text for d in train.documents} & {d.text for d in held.documents}
    assert [d.text for d in hold_out(corpus, 0.1, seed=0)[1].documents] == [d.text for d in held.documents]
    one = load_corpus(str(path), limit=1)
    with pytest.raises(DataError, match="at least 2"):
        hold_out(one, 0.1, seed=0)


def test_split_sentences():
    text = 'Mr. Smith met Dr. Who at 5 p.m. "Hello!" he said. J. R. R. Tolkien wrote it. The U.S. Army won? Yes.'
    assert split_sentences(text) == ["Mr. Smith met Dr. Who at 5 p.m.", '"Hello!" he said.',
                                     "J. R. R. Tolkien wrote it.", "The U.S. Army won?", "Yes."]
    assert split_sentences("no end punctuation here") == ["no end punctuation here"]
    assert split_sentences("   ") == []

"""The one hub: grammar (data/hub.py) and the three loaders going through it (no network)."""
from __future__ import annotations

import datasets
import pytest

from encoderlab.data.hub import HubSpec, load_hub_dataset, parse_hub_spec
from encoderlab.data.squad import load_squad
from encoderlab.data.text import load_text_dataset
from encoderlab.errors import DataError
from encoderlab.mlm.corpus import load_corpus


@pytest.mark.timeout(10)
@pytest.mark.parametrize("spec, expected", [
    ("hub:squad", HubSpec("squad")),
    ("hub:squad:validation", HubSpec("squad", split="validation")),
    ("hub:imdb:unsupervised", HubSpec("imdb", split="unsupervised")),
    ("hub:imdb:test[:10%]", HubSpec("imdb", split="test[:10%]")),
    ("hub:wikitext:wikitext-2-raw-v1", HubSpec("wikitext", config="wikitext-2-raw-v1")),
    ("hub:glue:sst2:validation", HubSpec("glue", "sst2", "validation")),
    ("hub:org/data:cfg:train", HubSpec("org/data", "cfg", "train")),
    ("rajpurkar/squad", HubSpec("rajpurkar/squad")),          # a bare name (QA data)
])
def test_parse_hub_spec_every_form(spec, expected):
    assert parse_hub_spec(spec) == expected


@pytest.mark.timeout(10)
@pytest.mark.parametrize("spec", ["hub:", "hub::train", "hub:a:b:c:d", "hub:glue::validation", "hub:squad:"])
def test_parse_hub_spec_refuses_malformed(spec):
    with pytest.raises(DataError, match=r"expected hub:NAME\[:CONFIG\]\[:SPLIT\]"):
        parse_hub_spec(spec)


@pytest.mark.timeout(10)
def test_str_round_trips():
    assert str(parse_hub_spec("hub:glue:sst2:validation")) == "hub:glue:sst2:validation"
    assert str(parse_hub_spec("hub:imdb:test")) == "hub:imdb:test"


@pytest.fixture
def captured(monkeypatch):
    calls = []

    def fake(name, config=None, *, split=None):
        calls.append((name, config, split))
        return fake.rows
    monkeypatch.setattr(datasets, "load_dataset", fake)
    return calls, fake


@pytest.mark.timeout(20)
def test_squad_loader_goes_through_the_grammar(captured):
    calls, fake = captured
    fake.rows = datasets.Dataset.from_list([{"id": "q1", "title": "T", "question": "Who?", "context": "Ann ran.",
                                             "answers": {"text": ["Ann"], "answer_start": [0]}}])
    ds = load_squad("hub:squad")
    assert calls[-1] == ("squad", None, "validation")
    assert [e.id for e in ds.examples] == ["q1"]
    load_squad("hub:squad_v2:squad_v2:train")
    assert calls[-1] == ("squad_v2", "squad_v2", "train")


@pytest.mark.timeout(20)
def test_text_loader_goes_through_the_grammar(captured):
    calls, fake = captured
    fake.rows = datasets.Dataset.from_dict(
        {"sentence": ["good", "bad"], "label": [1, 0]},
        features=datasets.Features({"sentence": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["negative", "positive"])}))
    ds = load_text_dataset("hub:glue:sst2:validation")
    assert calls[-1] == ("glue", "sst2", "validation")
    assert ds.texts == ["good", "bad"]
    assert ds.labels == ["positive", "negative"]
    load_text_dataset("hub:imdb")
    assert calls[-1] == ("imdb", None, "train")


@pytest.mark.timeout(20)
def test_corpus_loader_goes_through_the_grammar(captured):
    calls, fake = captured
    fake.rows = datasets.Dataset.from_dict({"text": ["first doc", "second doc"]})
    corpus = load_corpus("hub:wikitext:wikitext-2-raw-v1")
    assert calls[-1] == ("wikitext", "wikitext-2-raw-v1", "train")
    assert [d.text for d in corpus.documents] == ["first doc", "second doc"]
    load_corpus("hub:imdb:unsupervised")
    assert calls[-1] == ("imdb", None, "unsupervised")


@pytest.mark.timeout(20)
def test_loading_failure_is_one_line_naming_the_spec(monkeypatch):
    def boom(*a, **k):
        raise ConnectionError("Couldn't reach the Hub\nsecond line")
    monkeypatch.setattr(datasets, "load_dataset", boom)
    for load in (load_squad, load_text_dataset, load_corpus):
        with pytest.raises(DataError) as info:
            load("hub:no-such:train")
        assert str(info.value) == ("hub:no-such:train: could not be loaded from the Hugging Face Hub (offline or "
                                   "unknown data set? ConnectionError: Couldn't reach the Hub)")
    with pytest.raises(DataError, match="^hub:x: could not be loaded"):
        load_hub_dataset("hub:x")

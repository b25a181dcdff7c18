"""The HTTP API on scratch models, through FastAPI's TestClient (httpx): answers, classification, limits, errors."""
from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
           "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
           "and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")


@pytest.fixture(scope="module")
def client(torch_backends):
    from encoderlab.serve import ServeSettings, create_app

    settings = ServeSettings(max_body_bytes=20_000, max_context_chars=5_000, max_questions=4, max_top_k=5,
                             max_texts=3, max_text_chars=500)
    with TestClient(create_app(torch_backends, settings)) as c:
        yield c


def test_answer_one_question_with_offsets(client):
    r = client.post("/v1/answer", json={"context": CONTEXT, "question": "Who was Rollo?", "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny" and len(body["results"]) == 1
    res = body["results"][0]
    assert res["question"] == "Who was Rollo?"
    assert 1 <= len(res["answers"]) <= 3
    for a in res["answers"]:
        assert CONTEXT[a["start"]:a["end"]] == a["text"] and a["text"]
        assert 0 < a["score"] <= 1
    scores = [a["score"] for a in res["answers"]]
    assert scores == sorted(scores, reverse=True)
    assert res["no_answer_score"] is None                   # "no answer" does not compete in a v1.1 model
    assert res["answerable"] is True                        # a SQuAD v1.1 model always answers


def test_answer_many_questions_long_context_matches_question_answerer(client, qa_run):
    """Several windows per question (long context): same spans as the project's QuestionAnswerer."""
    from encoderlab.qa.predict import QuestionAnswerer

    context = " ".join([CONTEXT] * 12)                     # > one 384-token window
    questions = ["Who were the Normans?", "Where is Normandy?"]
    r = client.post("/v1/answer", json={"context": context, "questions": questions, "top_k": 2, "model": "tiny"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["question"] for x in results] == questions
    reference = QuestionAnswerer(str(qa_run / "model"), device="cpu", precision="fp32")(question=questions,
                                                                                         context=context, top_k=2)
    for got, ref in zip(results, reference):
        assert [(a["start"], a["end"]) for a in got["answers"]] == [(a["start"], a["end"]) for a in ref]
        assert [a["score"] for a in got["answers"]] == pytest.approx([a["score"] for a in ref], abs=1e-4)


def test_v2_model_reports_no_answer_probability(tmp_path):
    """no_answer_score means the same over HTTP as in the Python API: the probability of "no answer"."""
    from encoderlab.models import load_model
    from encoderlab.qa.predict import QuestionAnswerer
    from encoderlab.serve import create_app, load_backend

    r = load_model("scratch:bert-tiny", "qa", seed=1)
    r.model.config.encoderlab = {"task": "qa", "squad_version": "2.0", "null_threshold": 0.0}
    r.model.save_pretrained(str(tmp_path / "v2"))
    r.tokenizer.save_pretrained(str(tmp_path / "v2"))
    with TestClient(create_app([load_backend("v2", tmp_path / "v2", precision="fp32")])) as c:
        res = c.post("/v1/answer", json={"context": CONTEXT, "question": "Who?", "top_k": 2}).json()["results"][0]
    assert "no_answer_probability" not in res
    api = QuestionAnswerer(str(tmp_path / "v2"), device="cpu", precision="fp32")(question="Who?", context=CONTEXT,
                                                                                   top_k=2)
    assert 0 < res["no_answer_score"] < 1
    assert res["no_answer_score"] == pytest.approx(api[0]["no_answer_score"], abs=1e-5)
    assert res["answerable"] == (api[0]["answer"] != "")
    assert all(a["start"] >= 0 for a in res["answers"])      # the null candidate is not an answer span


def test_classify(client):
    texts = ["A gripping, beautifully shot film.", "Two hours I will never get back."]
    r = client.post("/v1/classify", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "sentiment" and len(body["results"]) == 2
    for res in body["results"]:
        assert set(res["probabilities"]) == {"negative", "positive"}
        assert sum(res["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert res["label"] == max(res["probabilities"], key=res["probabilities"].get)
        assert res["score"] == res["probabilities"][res["label"]]


def test_classify_matches_transformers_pipeline_and_text_classifier(client, cls_model_dir):
    from transformers import pipeline

    from encoderlab.classify.predict import TextClassifier

    texts = ["fine", "a much longer text about nothing in particular " * 10]   # the second is truncated to 64 tokens
    got = client.post("/v1/classify", json={"texts": texts}).json()["results"]
    pipe = pipeline("text-classification", model=str(cls_model_dir), device="cpu", top_k=None)
    for g, ref in zip(got, pipe(texts, truncation=True, max_length=64)):
        for item in ref:
            assert g["probabilities"][item["label"]] == pytest.approx(item["score"], abs=1e-4)
    for g, ref in zip(got, TextClassifier(str(cls_model_dir), device="cpu", precision="fp32")(texts)):
        assert g["label"] == ref["label"]
        assert g["probabilities"] == pytest.approx(ref["probabilities"], abs=1e-4)


def test_classify_head_tail_truncation_as_in_training(tmp_path):
    from encoderlab.classify.predict import TextClassifier
    from encoderlab.models import load_model
    from encoderlab.serve import create_app, load_backend

    r = load_model("scratch:bert-tiny", "classify", num_labels=3, seed=5)
    r.model.config.encoderlab = {"task": "classify", "max_seq_length": 24, "truncation": "head+tail"}
    r.model.save_pretrained(str(tmp_path / "ht"))
    r.tokenizer.save_pretrained(str(tmp_path / "ht"))
    texts = [" ".join(f"word{i}" for i in range(60)), "short one"]
    with TestClient(create_app([load_backend("ht", tmp_path / "ht", precision="fp32")])) as c:
        body = c.post("/v1/classify", json={"texts": texts}).json()
    ref = TextClassifier(str(tmp_path / "ht"), device="cpu", precision="fp32")(texts)
    for g, e in zip(body["results"], ref):
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=1e-4)


def test_models_health_docs_page(client):
    models = client.get("/v1/models").json()
    by_name = {m["name"]: m for m in models["models"]}
    assert by_name["tiny"]["task"] == "qa" and by_name["sentiment"]["labels"] == ["negative", "positive"]
    assert by_name["tiny"]["squad_version"] == "1.1" and "labels" not in by_name["tiny"]    # Task.serve_info
    assert "squad_version" not in by_name["sentiment"]
    assert by_name["tiny"]["backend"] == "torch" and "batching" in by_name["tiny"]
    assert models["limits"]["max_top_k"] == 5
    assert client.get("/healthz").json() == {"status": "ok", "models": ["tiny", "sentiment"]}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()        # the API docs need no internet
    for asset in ("/static-offline-docs/swagger-ui-bundle.js", "/static-offline-docs/swagger-ui.css"):
        assert asset in docs.text and client.get(asset).status_code == 200
    assert client.get("/redoc").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/answer", "/v1/classify", "/v1/models", "/healthz"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("body, status, fragment", [
    ({"context": CONTEXT, "question": "Who?", "top_k": 0}, 422, "top_k must be between 1 and 5, not 0"),
    ({"context": CONTEXT, "question": "Who?", "top_k": 6}, 422, "top_k must be between 1 and 5, not 6"),
    ({"context": CONTEXT, "question": "Who?", "top_k": "many"}, 422, "top_k"),
    ({"context": "x" * 5001, "question": "Who?"}, 422, "context too long: 5001 characters > the limit of 5000"),
    ({"context": CONTEXT, "questions": ["a?"] * 5}, 422, "too many questions: 5 > the limit of 4"),
    ({"context": CONTEXT, "questions": []}, 422, "no question"),
    ({"context": CONTEXT}, 422, "no question"),
    ({"context": CONTEXT, "question": "a?", "questions": ["b?"]}, 422, "not both"),
    ({"context": "   ", "question": "Who?"}, 422, "context is empty"),
    ({"context": CONTEXT, "questions": ["ok?", " "]}, 422, "question 2 is empty"),
    ({"question": "Who?"}, 422, "context: Field required"),
    ({"context": CONTEXT, "question": "Who?", "topk": 3}, 422, "topk: Extra inputs are not permitted"),
    ({"context": 5, "question": "Who?"}, 422, "context: Input should be a valid string"),
    ({"context": CONTEXT, "question": "Who?", "model": "nope"}, 404, "unknown model 'nope' (served: tiny, sentiment)"),
    ({"context": CONTEXT, "question": "Who?", "model": "sentiment"}, 422, "'sentiment' is a classify model"),
])
def test_answer_limits_and_bad_bodies(client, body, status, fragment):
    r = client.post("/v1/answer", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


@pytest.mark.parametrize("body, fragment", [
    ({"texts": []}, "no text"),
    ({"texts": ["a", "b", "c", "d"]}, "too many texts: 4 > the limit of 3"),
    ({"texts": ["a", "x" * 501]}, "text 2 is too long: 501 characters > the limit of 500"),
    ({"texts": ["a", ""]}, "text 2 is empty"),
    ({"texts": "just one"}, "texts: Input should be a valid list"),
    ({"texts": ["a"], "model": "tiny"}, "'tiny' is a qa model"),
])
def test_classify_limits(client, body, fragment):
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


def test_malformed_json_and_body_size(client):
    r = client.post("/v1/answer", content=b'{"context": "x", "question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON decode error" in r.json()["detail"]
    big = json.dumps({"context": "x" * 30_000, "question": "Who?"})
    r = client.post("/v1/answer", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "request body too large" in r.json()["detail"] and "20000-byte limit" in r.json()["detail"]

    def chunks():   # no Content-Length: the limit is enforced on the streamed bytes
        for _ in range(30):
            yield b" " * 1000

    r = client.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_missing_task_model_is_404(torch_backends):
    from encoderlab.serve import create_app

    with TestClient(create_app([torch_backends[1]])) as c:
        r = c.post("/v1/answer", json={"context": CONTEXT, "question": "Who?"})
    assert r.status_code == 404 and "no QA model is served (models: sentiment)" in r.json()["detail"]


@pytest.mark.timeout(300)
def test_request_timeout_is_504(qa_run):
    from encoderlab.serve import ServeSettings, create_app, load_backend

    backend = load_backend("slow", qa_run)
    run = backend._run
    release, finished = threading.Event(), threading.Event()

    def stuck_run(batch):                                  # the model hangs until the test releases it
        release.wait(120)
        try:
            return run(batch)
        finally:
            finished.set()

    backend._run = stuck_run
    # waits on events, not sleeps: the outcome does not depend on how loaded the machine is
    with TestClient(create_app([backend], ServeSettings(request_timeout_s=1.5))) as c:
        r = c.post("/v1/answer", json={"context": CONTEXT, "question": "Who?"})
        assert r.status_code == 504 and "1.5 s timeout" in r.json()["detail"]
        assert not finished.is_set()
        backend._run = run
        release.set()
        assert finished.wait(120)                          # the abandoned batch finishes; the server still answers
        r = c.post("/v1/answer", json={"context": CONTEXT, "question": "Who?"})
        assert r.status_code == 200 and r.json()["results"][0]["answers"]


def test_classify_text_pairs(tmp_path):
    from encoderlab.classify.predict import TextClassifier
    from encoderlab.models import load_model
    from encoderlab.serve import create_app, load_backend

    out = tmp_path / "nli"
    r = load_model("scratch:bert-tiny", "classify", num_labels=2, id2label={0: "no", 1: "yes"},
                   label2id={"no": 0, "yes": 1}, seed=7)
    r.model.config.encoderlab = {"task": "classify", "max_seq_length": 48, "truncation": "head",
                                 "text_column": "premise", "text_pair_column": "hypothesis"}
    r.model.save_pretrained(str(out))
    r.tokenizer.save_pretrained(str(out))
    texts, pairs = ["a man plays a guitar", "the sky is blue"], ["someone makes music", "it is raining"]
    with TestClient(create_app([load_backend("nli", out, precision="fp32")])) as c:
        assert c.get("/v1/models").json()["models"][0]["text_pairs"] is True
        res = c.post("/v1/classify", json={"texts": texts, "text_pairs": pairs})
        assert res.status_code == 200, res.text
        got = [x["probabilities"] for x in res.json()["results"]]
        missing = c.post("/v1/classify", json={"texts": texts})
        short = c.post("/v1/classify", json={"texts": texts, "text_pairs": pairs[:1]})
        empty = c.post("/v1/classify", json={"texts": texts, "text_pairs": ["x", " "]})
    for g, e in zip(got, TextClassifier(out, device="cpu", precision="fp32")(texts, pairs)):
        assert g == pytest.approx(e["probabilities"], abs=1e-4)
    assert missing.status_code == 422 and "classifies text pairs" in missing.json()["detail"]
    assert short.status_code == 422 and "2 texts but 1 text_pairs" in short.json()["detail"]
    assert empty.status_code == 422 and "text_pairs 2 is empty" in empty.json()["detail"]

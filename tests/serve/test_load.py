"""A bounded load test on loopback: N concurrent httpx clients, a fixed number of requests, no errors, real batches."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from _helpers import argmax_labels

CLIENTS = 16
REQUESTS_PER_CLIENT = 6


@pytest.mark.timeout(600)
def test_concurrent_clients_get_answers_and_share_batches(live_server, context, cls_model_dir):
    assert live_server.url.startswith("http://127.0.0.1:")
    texts = [f"text {i}-{j}" for i in range(CLIENTS) for j in range(2, REQUESTS_PER_CLIENT, 3)]
    # the classifier's own answers (plain Transformers), where they are clear of float noise
    expected = {t: label for t, (label, margin) in zip(texts, argmax_labels(cls_model_dir, texts)) if margin > 1e-4}
    assert len(expected) >= len(texts) // 2
    before = {m["name"]: m["batching"]["batches"] for m in httpx.get(f"{live_server.url}/v1/models").json()["models"]}

    async def client(i: int) -> list[int]:
        statuses = []
        async with httpx.AsyncClient(base_url=live_server.url, timeout=300) as c:
            for j in range(REQUESTS_PER_CLIENT):
                if j % 3 == 2:
                    r = await c.post("/v1/classify", json={"texts": [f"text {i}-{j}", "another one"]})
                    label = r.json()["results"][0]["label"]
                    assert label == expected.get(f"text {i}-{j}", label)
                else:
                    r = await c.post("/v1/answer", json={"context": context, "question": f"Who was Rollo ({i}, {j})?",
                                                         "top_k": 2})
                    a = r.json()["results"][0]["answers"][0]
                    assert context[a["start"]:a["end"]] == a["text"]
                statuses.append(r.status_code)
        return statuses

    async def main():
        return await asyncio.gather(*(client(i) for i in range(CLIENTS)))

    statuses = [s for per_client in asyncio.run(main()) for s in per_client]
    assert len(statuses) == CLIENTS * REQUESTS_PER_CLIENT and set(statuses) == {200}
    models = {m["name"]: m for m in httpx.get(f"{live_server.url}/v1/models").json()["models"]}
    qa = models["tiny"]["batching"]
    assert qa["items"] >= CLIENTS * 4                          # every QA request went through the batcher
    assert qa["largest_batch"] > 1 and qa["batches"] - before["tiny"] < CLIENTS * 4   # and batches were formed
    assert models["sentiment"]["batching"]["largest_batch"] > 2


def test_parallel_tokenization_with_long_questions(torch_backends, context):
    """Requests are tokenized in a thread pool: long questions (their own truncation pass) and contexts
    tokenized at once must give exactly the serial windows — the tokenizer is shared and stateful."""
    from concurrent.futures import ThreadPoolExecutor

    from encoderlab.serve.qa import QAService

    service = QAService(torch_backends[0])
    long_q = "What is said here about " + "the history and the many people of the region " * 12 + "?"
    jobs = [(context * (1 + i % 3), [long_q if i % 2 else "Who?", "When did it happen?"]) for i in range(24)]
    serial = [service.featurize(c, q).input_ids for c, q in jobs]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda job: service.featurize(*job).input_ids, jobs))
    assert parallel == serial
    assert all(len(ids) <= service.feature_cfg.max_seq_length for feats in parallel for ids in feats)


def test_windows_follow_training(qa_run):
    """The served windows are the ones the model was trained with (recorded in its config)."""
    import json

    from encoderlab.serve import load_backend
    from encoderlab.serve.qa import QAService

    info = json.loads((qa_run / "model" / "config.json").read_text())["encoderlab"]
    cfg = QAService(load_backend("tiny", qa_run)).feature_cfg
    assert (cfg.max_seq_length, cfg.doc_stride) == (info["max_seq_length"], info["doc_stride"]) == (128, 32)

"""Serving is registry-driven: a servable task is one Task entry + one TaskService subclass (no model needed)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from encoderlab import tasks
from encoderlab.errors import ModelError
from encoderlab.serve.app import create_app
from encoderlab.serve.qa import QAService
from encoderlab.serve.service import TaskService, check_texts, limit


class EchoRequest(BaseModel):
    texts: list[str]
    model: Optional[str] = None


class EchoService(TaskService, task="echo", request=EchoRequest, result=int, response="EchoResponse",
                  summary="Text lengths"):
    """Answers the length of each text, through the dynamic batcher."""

    def _forward_rows(self, rows):
        return [len(r) for r in rows]

    @classmethod
    def check_request(cls, req, settings):
        limit(not req.texts, "no text")
        check_texts(req.texts, "text", settings.max_text_chars)

    async def handle(self, req):
        return await self.batcher.submit_many(req.texts)


def fake_backend(name: str, task: str):
    return SimpleNamespace(name=name, task=task, describe=lambda: {"name": name, "task": task})


@pytest.fixture
def echo_task(monkeypatch):
    qa = tasks.TASKS["qa"]
    task = tasks.Task(name="echo", title="echo", config=qa.config, train=qa.train, evaluate=qa.evaluate,
                      predict=qa.predict, heads=(), metrics=qa.metrics, headline=qa.headline,
                      report_columns=(), plots=(), serve=f"{__name__}:EchoService", serve_route="/v1/echo")
    monkeypatch.setitem(tasks.TASKS, "echo", task)
    return task


@pytest.mark.timeout(30)
def test_a_new_task_is_served_from_its_registry_entry_alone(echo_task):
    with TestClient(create_app([fake_backend("e", "echo")])) as client:
        r = client.post("/v1/echo", json={"texts": ["ab", "abcd"]})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "e" and r.json()["results"] == [2, 2 + 2]
        r = client.post("/v1/echo", json={"texts": ["  "]})
        assert (r.status_code, r.json()["detail"]) == (422, "text 1 is empty")
        r = client.post("/v1/answer", json={"context": "Ann ran.", "question": "Who?", "model": "e"})
        assert (r.status_code, r.json()["detail"]) == (422, "model 'e' is a echo model, not a QA model")
        r = client.post("/v1/classify", json={"texts": ["x"]})
        assert r.status_code == 404 and r.json()["detail"].startswith("no classification model is served")
        schema = client.get("/openapi.json").json()
        assert {"/v1/answer", "/v1/classify", "/v1/echo"} <= set(schema["paths"])
        assert {"AnswerRequest", "AnswerResponse", "ClassifyResponse", "EchoResponse"} <= set(schema["components"]["schemas"])


@pytest.mark.timeout(10)
def test_a_service_refuses_a_model_of_another_task():
    with pytest.raises(ModelError, match=r"^c is a classification model, not a QA model$"):
        QAService(fake_backend("c", "classify"))

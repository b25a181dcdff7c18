"""Serve fixtures: the tiny QA run, a tiny scratch classifier, their ONNX exports, a live uvicorn server."""
from __future__ import annotations

import socket
import threading
import time

import pytest

CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
           "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
           "and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")


@pytest.fixture(scope="session")
def context() -> str:
    """A short SQuAD-like paragraph."""
    return CONTEXT


@pytest.fixture(scope="session")
def serve_live():
    """``with serve_live(app) as server:`` runs `app` on a free loopback port (server.url)."""
    return LiveServer


@pytest.fixture(scope="session")
def qa_run(tiny_qa_run):
    """A finished scratch:bert-tiny QA run directory (RUN/model inside)."""
    return tiny_qa_run[0]


@pytest.fixture(scope="session")
def cls_model_dir(tmp_path_factory):
    """A saved scratch:bert-tiny classifier with labels negative/positive (random weights)."""
    from encoderlab.models import load_model

    out = tmp_path_factory.mktemp("cls") / "sentiment"
    r = load_model("scratch:bert-tiny", "classify", num_labels=2, id2label={0: "negative", 1: "positive"},
                   label2id={"negative": 0, "positive": 1}, seed=3)
    r.model.config.encoderlab = {"task": "classify", "max_seq_length": 64, "truncation": "head"}
    r.model.save_pretrained(str(out))
    r.tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def qa_onnx(qa_run):
    from encoderlab.export import export_onnx

    return export_onnx(qa_run)


@pytest.fixture(scope="session")
def cls_onnx(cls_model_dir):
    from encoderlab.export import export_onnx

    return export_onnx(cls_model_dir)


@pytest.fixture(scope="session")
def torch_backends(qa_run, cls_model_dir):
    from encoderlab.serve import load_backend

    # fp32: the serving tests compare these with fp32 references (QuestionAnswerer, ONNX Runtime)
    return [load_backend("tiny", qa_run, precision="fp32"),
            load_backend("sentiment", cls_model_dir, precision="fp32")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a background thread on a free loopback port."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(torch_backends):
    from encoderlab.serve import ServeSettings, create_app

    app = create_app(torch_backends, ServeSettings(max_batch_size=16, max_wait_ms=10.0))
    with LiveServer(app) as server:
        yield server


@pytest.fixture()
def live_server_for():
    """LiveServer(app) as a fixture, for tests that serve their own app."""
    return LiveServer

"""Hostile requests: never a 500 or a reset connection, always a 4xx with a message (docs/reliability.md)."""
from __future__ import annotations

import http.client
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CONTEXT = "The Normans gave their name to Normandy, a region in France. Their leader was Rollo."


@pytest.fixture(scope="module")
def client(torch_backends):
    from encoderlab.serve import ServeSettings, create_app

    settings_ = ServeSettings(max_body_bytes=20_000, max_context_chars=5_000, max_questions=4, max_top_k=5,
                              max_texts=3, max_text_chars=500)
    with TestClient(create_app(torch_backends, settings_), raise_server_exceptions=False) as c:
        yield c


def post_raw(client, path: str, raw: bytes):
    return client.post(path, content=raw, headers={"content-type": "application/json"})


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path, raw, fragment", [
    ("/v1/answer", b'{"context": "\\ud800 x", "question": "Who?"}', "context: invalid character U+D800"),
    ("/v1/answer", b'{"context": "Rollo", "questions": ["ok?", "\\udfff?"]}', "question 2: invalid character U+DFFF"),
    ("/v1/classify", b'{"texts": ["fine", "bad \\ud83d"]}', "text 2: invalid character U+D83D"),
    ("/v1/answer", b'{"context": "Rollo", "question": "Who?", "top_k": NaN}', "top_k"),
    ("/v1/answer", b'{"context": "Rollo", "question": "Who?", "top_k": Infinity}', "top_k"),
    ("/v1/answer", b'{"context": "Rollo", "question": "Who?", "\\ud800": 1}', "body: Input should be a valid string"),
    ("/v1/answer", '{"context": "caf\u00e9", "question": "Who?"}'.encode("latin-1"), "request body is not valid UTF-8 (byte 16)"),
])
def test_lone_surrogates_nan_and_bad_utf8_are_422(client, path, raw, fragment):
    r = post_raw(client, path, raw)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


@pytest.mark.timeout(120)
def test_unknown_model_name_with_a_surrogate_is_404_not_500(client):
    r = post_raw(client, "/v1/answer", b'{"context": "Rollo", "question": "Who?", "model": "\\ud800"}')
    assert r.status_code == 404
    assert r.json()["detail"] == "unknown model '\ud800' (served: tiny, sentiment)"


def _send_whole_body(port: int, body: bytes, declare_length: bool = True) -> tuple[int, dict]:
    """POST `body` completely (as curl, requests or http.client do), then read the response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/v1/answer")
    conn.putheader("Content-Type", "application/json")
    if declare_length:
        conn.putheader("Content-Length", str(len(body)))
    else:
        conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    if declare_length:
        for i in range(0, len(body), 65536):
            conn.send(body[i:i + 65536])
    else:
        for i in range(0, len(body), 65536):
            chunk = body[i:i + 65536]
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("declare_length", [True, False])
def test_3mb_body_sent_whole_gets_413_not_a_reset(torch_backends, live_server_for, declare_length):
    from encoderlab.serve import ServeSettings, create_app

    app = create_app(torch_backends, ServeSettings(max_body_bytes=1_000_000))
    body = json.dumps({"context": "x" * 3_000_000, "question": "Who?"}).encode()
    with live_server_for(app) as server:
        for _ in range(2):       # the server stays healthy after each refusal
            status, payload = _send_whole_body(server.port, body, declare_length)
            assert status == 413
            assert "1000000-byte limit" in payload["detail"]
        ok, _ = _send_whole_body(server.port, json.dumps({"context": CONTEXT, "question": "Who?"}).encode())
        assert ok == 200


# ---- property-based: any JSON body gives 200 or a 4xx with a detail, never a 500 ---------------------------

_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)  # incl. surrogates
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=8)
_answer_body = st.fixed_dictionaries({}, optional={
    "context": _text | _json, "question": _text | _json, "questions": st.lists(_text, max_size=5) | _json,
    "top_k": st.integers(-3, 8) | _json, "model": st.sampled_from(["tiny", "sentiment", "nope"]) | _text})
_classify_body = st.fixed_dictionaries({}, optional={
    "texts": st.lists(_text, max_size=4) | _json, "text_pairs": st.lists(_text, max_size=4) | _json,
    "model": st.sampled_from(["tiny", "sentiment"]) | _text})


def _check(r) -> None:
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text)
    if r.status_code != 200:
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]


@pytest.mark.timeout(300)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_answer_body)
def test_fuzz_answer_never_500(client, body):
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    _check(post_raw(client, "/v1/answer", raw))


@pytest.mark.timeout(300)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_classify_body)
def test_fuzz_classify_never_500(client, body):
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    _check(post_raw(client, "/v1/classify", raw))


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200))
def test_fuzz_raw_bytes_never_500(client, raw):
    _check(post_raw(client, "/v1/answer", raw))

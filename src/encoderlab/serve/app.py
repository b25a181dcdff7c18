"""The FastAPI app: ``create_app(backends, settings)``.

Endpoints: ``POST /v1/answer`` (extractive QA, top-k spans with confidence and character offsets,
the no-answer score), ``POST /v1/classify`` (labels and probabilities), ``GET /v1/models``
(served models with their batching statistics), ``GET /healthz``, the web page at ``/`` and the
OpenAPI docs at ``/docs``. Limits (``ServeSettings``): request body size -> 413 (bodies up to
``DRAIN_BYTES`` are read to the end first, so a client that sends its whole body sees the 413); a body
that is not UTF-8, or text holding a lone surrogate (``"\ud800"``) -> 422; context length,
question count and length, text count and length, top_k range -> 422 with a message naming the
limit; inference slower than ``request_timeout_s`` -> 504.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..tasks import TASKS, Task, get_task
from .backends import ModelBackend
from .service import TaskService, limit


@dataclass
class ServeSettings:
    """Batching and request limits of the server (all have CLI flags in `encoderlab serve`)."""
    max_batch_size: int = 32          # features / texts per model forward
    max_wait_ms: float = 5.0          # how long the first item of a batch waits for company
    request_timeout_s: float = 30.0   # per request, tokenization + queueing + inference
    max_body_bytes: int = 1_000_000
    max_context_chars: int = 20_000
    max_questions: int = 16
    max_question_chars: int = 1_000
    max_top_k: int = 20
    max_texts: int = 64
    max_text_chars: int = 20_000

    def __post_init__(self):
        for name, value in asdict(self).items():
            if value is None or value < 0 or (value == 0 and name != "max_wait_ms"):
                raise ValueError(f"{name} must be positive, not {value}")


# ---- responses (each task's request / response schemas live with its service: qa.py, classify.py) ----------

class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate echoed back from a request (in a validation error or an
    unknown model name) cannot be encoded as UTF-8, and must not turn a 4xx into a 500."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


# ---- body size limit and encoding (pure ASGI, so it sees the raw stream) ------------------------------------

DRAIN_BYTES = 16 * 1024**2   # an oversized body up to this size is read (and dropped) before the 413 is sent


class BodySizeLimit:
    """Reject request bodies larger than `max_bytes` with 413, and bodies that are not UTF-8 with 422,
    before the app parses them. An oversized body is drained (up to ``DRAIN_BYTES``) first: a server that
    answers and closes while the client is still sending makes most clients see a connection reset or a
    broken pipe instead of the 413."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if int(declared) <= DRAIN_BYTES and not await self._drain(receive):
                return
            return await self._too_large(send, int(declared))
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                more = message.get("more_body", False)
                if more and not await self._drain(receive, size):
                    return
                return await self._too_large(send, size)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return await self._reject(send, 422, f"request body is not valid UTF-8 (byte {exc.start})")

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive, size: int = 0) -> bool:
        """Read and drop the rest of the body (up to DRAIN_BYTES); False if the client went away."""
        while size <= DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return True

    async def _too_large(self, send, size: int):
        await self._reject(send, 413, f"request body too large: {size} bytes > the {self.max_bytes}-byte limit")

    @staticmethod
    async def _reject(send, status: int, detail: str):
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


# ---- the app -----------------------------------------------------------------------------------------

def create_app(backends: Sequence[ModelBackend], settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving `backends` (QA and/or classification) with dynamic batching."""
    settings = settings or ServeSettings()
    if not backends:
        raise ValueError("create_app needs at least one model backend")
    services: dict[str, TaskService] = {}
    for b in backends:
        if b.name in services:
            raise ValueError(f"two models are named '{b.name}'")
        kwargs = dict(max_batch_size=settings.max_batch_size, max_wait_ms=settings.max_wait_ms)
        services[b.name] = get_task(b.task).service_cls()(b, **kwargs)     # the task registry's service

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        for s in services.values():
            await s.batcher.aclose()

    # FastAPIOffline: FastAPI whose /docs and /redoc pages load Swagger UI / ReDoc from files packaged with
    # fastapi-offline instead of a CDN, so the API docs work on machines without internet access
    app = FastAPIOffline(title="encoderlab", version=__version__, lifespan=lifespan,
                         default_response_class=SafeJSONResponse,
                  description="Extractive question answering and text classification with fine-tuned encoders. "
                              "Concurrent requests are batched dynamically for the model.")
    app.state.settings = settings
    app.state.services = services
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        parts = []
        for e in errors[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return SafeJSONResponse(status_code=422, content={"detail": "; ".join(parts) or "invalid request",
                                                          "errors": [{k: e.get(k) for k in ("type", "loc", "msg")}
                                                                     for e in errors]})

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return SafeJSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                                headers=getattr(exc, "headers", None))

    def pick(name: str | None, task: Task) -> TaskService:
        if name is None:
            for s in services.values():
                if s.backend.task == task.name:
                    return s
            raise HTTPException(404, f"no {task.title} model is served (models: {', '.join(services)})")
        if name not in services:
            raise HTTPException(404, f"unknown model '{name}' (served: {', '.join(services)})")
        s = services[name]
        limit(s.backend.task != task.name, f"model '{name}' is a {s.backend.task} model, not a {task.title} model")
        return s

    async def run_with_timeout(coro):
        try:
            return await asyncio.wait_for(coro, settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"the request took longer than the {settings.request_timeout_s:g} s timeout") from None

    def add_route(task: Task) -> None:
        """POST task.serve_route: the task's service checks the request, then answers it with the chosen model."""
        cls = task.service_cls()

        async def endpoint(req):
            cls.check_request(req, settings)
            service = pick(req.model, task)
            t0 = time.perf_counter()
            results = await run_with_timeout(service.handle(req))
            return cls.Response(model=service.backend.name, results=results, seconds=round(time.perf_counter() - t0, 6))

        endpoint.__name__ = f"serve_{task.name}"
        endpoint.__signature__ = inspect.Signature(
            [inspect.Parameter("req", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=cls.Request)],
            return_annotation=cls.Response)
        app.post(task.serve_route, response_model=cls.Response, summary=cls.summary)(endpoint)

    for task in TASKS.values():
        if task.servable:
            add_route(task)

    @app.get("/v1/models", summary="Served models, their settings and batching statistics")
    async def models() -> dict:
        return {"models": [{**s.backend.describe(), **s.describe(), "batching": s.batcher.stats()}
                           for s in services.values()],
                "limits": asdict(settings)}

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict:
        return {"status": "ok", "models": list(services)}

    static = resources.files("encoderlab.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app

"""What every served task has in common: the base class of the task services and the request checks.

A servable task is one registry entry (`encoderlab.tasks.Task`: ``serve`` = its service class,
``serve_route`` = its HTTP route, ``serve_info`` = the ModelInfo fields shown in ``/v1/models``) plus
one `TaskService` subclass, which names its task and brings its request / response schemas
(``Request``, ``Response``), its request checks (``check_request``, before a model is chosen) and
``handle(request) -> results``. `encoderlab.serve.app.create_app` registers one route per servable task
of the registry; nothing there names a task.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

from fastapi import HTTPException
from pydantic import BaseModel, create_model

from ..data.io import check_text
from ..errors import DataError, ModelError
from ..tasks import get_task
from .backends import ModelBackend
from .batcher import DynamicBatcher


def limit(condition: bool, message: str, status: int = 422) -> None:
    """An HTTP error (422 by default) with `message` when `condition` holds."""
    if condition:
        raise HTTPException(status_code=status, detail=message)


def check_unicode(value: str, where: str) -> None:
    """422 for text that is not valid Unicode (a lone surrogate), naming `where`."""
    try:
        check_text(value, where)
    except DataError as exc:
        raise HTTPException(422, str(exc)) from None


def check_texts(values: Sequence[str], what: str, max_chars: int) -> None:
    """Each of `values` is valid Unicode, not blank and at most `max_chars` long (422 naming ``what N``)."""
    for i, value in enumerate(values):
        where = f"{what} {i + 1}"
        check_unicode(value, where)
        limit(not value.strip(), f"{where} is empty")
        limit(len(value) > max_chars, f"{where} is too long: {len(value)} characters > the limit of {max_chars}")


class ServiceResponse(BaseModel):
    """The body every route answers: the model that answered, one result per input, the seconds it took.
    A task's response schema derives from it and narrows ``results``."""
    model: str
    results: list
    seconds: float


class TaskService:
    """A served model of one task: its backend, its dynamic batcher and its HTTP request handling.

    A subclass names its task and schemas in its class line: ``class QAService(TaskService, task="qa",
    request=AnswerRequest, result=QuestionResult, response="AnswerResponse", summary="...")``.
    """

    task: ClassVar[str]                      # the registry name of the task this service serves
    Request: ClassVar[type[BaseModel]]       # the JSON body of its route
    Response: ClassVar[type[ServiceResponse]]   # {model, results: [result, ...], seconds}
    summary: ClassVar[str] = ""              # the route's summary in the OpenAPI docs

    def __init_subclass__(cls, *, task: str, request: type[BaseModel], result: type, response: str,
                          summary: str = "", **kwargs):
        super().__init_subclass__(**kwargs)
        cls.task, cls.Request, cls.summary = task, request, summary
        cls.Response = create_model(response, __base__=ServiceResponse, __module__=cls.__module__,
                                    results=(list[result], ...))

    def __init__(self, backend: ModelBackend, *, max_batch_size: int = 32, max_wait_ms: float = 5.0):
        if backend.task != self.task:
            raise ModelError(f"{backend.name} is a {get_task(backend.task).title} model, "
                             f"not a {get_task(self.task).title} model")
        self.backend = backend
        self.batcher = DynamicBatcher(self._forward_rows, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                      name=backend.name)

    def _forward_rows(self, rows: list[dict]) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def check_request(cls, req: BaseModel, settings: Any) -> None:
        """Checks of a request before a model is chosen (limits of `settings`, a ServeSettings); 422 on failure."""

    async def handle(self, req: BaseModel) -> list:  # pragma: no cover - abstract
        """The results of a checked request."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {}

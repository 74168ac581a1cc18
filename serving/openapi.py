"""The OpenAPI description of ``/predict``, ``/feedback`` and ``/model``, with the served
version's own input schema, in BentoML's ``/docs.json`` and its Swagger UI.

Why a FastAPI twin: BentoML documents the routes of the FastAPI apps a service mounts, and no
other kind. The endpoints are served by a plain Starlette app (`http_app`), which answers a
request about 40 µs sooner than the same handler behind FastAPI's routing: a tenth of a small
model's request. So a FastAPI app holding the same handlers is mounted after the Starlette app,
at the same path. Requests never reach it (the first mount answers every path beneath it); its
routes, each with the version's request and response schemas, are what BentoML writes into
``/docs.json``. They are added once the worker has loaded the version, since the schema is the
version's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from mlcanary.models.registry import ModelVersion
from mlcanary.models.task import ClassificationOutput

__all__ = ["docs_app", "document"]

Handler = Callable[[Request], Awaitable[Response]]

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "where in the body, e.g. instances[0]"},
            },
            "required": ["code", "message"],
        }
    },
}
_ERRORS = {
    "400": "the body is not JSON",
    "413": "the body or the batch is too large",
    "415": "the body is not application/json",
    "422": "the body does not fit the version's schema; the error names the field",
    "503": "overloaded or still loading: retry after Retry-After seconds",
}


def docs_app() -> FastAPI:
    """The app BentoML documents; its routes are added by `document`."""
    return FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"content": {"application/json": media}}


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "200": {"description": "OK", **_json(ok)},
        **{code: {"description": text, **_json(_ERROR)} for code, text in _ERRORS.items()},
    }


def _predict(version: ModelVersion, max_batch: int) -> dict[str, Any]:
    row = version.schema.json_schema()
    prediction = version.output.json_schema()
    answer: dict[str, Any] = {
        "model": {"type": "string"},
        "version": {"type": "string"},
        "predictions": {"type": "array", "items": prediction},
        "feedback_tokens": {
            "type": "array",
            "items": {"type": "string"},
            "description": "one per row: post it to /feedback with the row's true label",
        },
    }
    if isinstance(version.output, ClassificationOutput) and version.output.probabilities:
        answer["classes"] = {"type": "array", "items": prediction}
        answer["probabilities"] = {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}},
            "description": "per row, one probability per class, in the order of classes",
        }
    body = {
        "type": "object",
        "properties": {
            "instances": {"type": "array", "items": row, "minItems": 1, "maxItems": max_batch}
        },
        "required": ["instances"],
        "additionalProperties": False,
    }
    return {
        "summary": f"Predict with {version.ref} ({version.task.value})",
        "description": f"Takes {version.schema.describe()}.",
        "requestBody": {
            "required": True,
            **_json(body, {"instances": [version.schema.example_row()]}),
        },
        "responses": _responses({"type": "object", "properties": answer}),
    }


def _feedback(version: ModelVersion) -> dict[str, Any]:
    body = {
        "type": "object",
        "properties": {"token": {"type": "string"}, "label": version.output.json_schema()},
        "required": ["token", "label"],
        "additionalProperties": False,
    }
    measured = (
        {"correct": {"type": "boolean"}}
        if isinstance(version.output, ClassificationOutput)
        else {"absolute_error": {"type": "number"}, "squared_error": {"type": "number"}}
    )
    answer = {
        "accepted": {"type": "boolean"},
        "model": {"type": "string"},
        "version": {"type": "string", "description": "the version that made the prediction"},
        **measured,
    }
    responses = _responses({"type": "object", "properties": answer})
    responses |= {
        "401": {"description": "no labeler key, or a wrong one", **_json(_ERROR)},
        "403": {"description": "a forged or altered token", **_json(_ERROR)},
        "409": {"description": "feedback for this prediction was already counted"},
        "410": {"description": "the token has expired"},
    }
    return {
        "summary": "The true label of one prediction",
        "description": "Send `Authorization: Bearer <labeler key>`: only the labeling pipeline "
        "holds the key (MLCANARY_LABELER_KEY), clients that predict do not.",
        "requestBody": {"required": True, **_json(body)},
        "responses": responses,
    }


def document(
    app: FastAPI,
    version: ModelVersion,
    max_batch: int,
    handlers: Mapping[str, tuple[str, Handler]],
) -> None:
    """Add the version's routes to the docs app: ``handlers`` maps a path to its method and
    the Starlette handler that serves it."""
    extras = {
        "/predict": _predict(version, max_batch),
        "/feedback": _feedback(version),
        "/model": {
            "summary": "The served version: its input schema, task and classes",
            "responses": {"200": {"description": "OK", **_json({"type": "object"})}},
        },
    }
    for path, (method, handler) in handlers.items():
        app.router.routes.append(
            APIRoute(
                path,
                handler,
                methods=[method],
                response_class=Response,
                openapi_extra=extras[path],
                include_in_schema=True,
            )
        )

"""API errors as the Kubernetes API server reports them: a ``Status`` object with a code."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ApiError", "invalid"]

_FIELD_MESSAGE = re.compile(r"^(?P<field>[\w.\[\]/$-]+): (?P<message>.+)$", re.DOTALL)


class ApiError(Exception):
    """An error answer; ``status()`` is the body the real server would send."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        group: str | None = None,
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = {}
        if name is not None:
            self.details["name"] = name
        if kind is not None:
            self.details["kind"] = kind
        if group is not None:
            self.details["group"] = group
        if causes:
            self.details["causes"] = causes

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def invalid(kind: str, group: str, name: str, problems: list[str]) -> ApiError:
    """422 Invalid with one cause per problem; a "field: message" problem names its field."""
    causes = []
    for problem in problems:
        text = problem.removeprefix(f"{kind}/{name}: ")  # the validator names the object
        match = _FIELD_MESSAGE.match(text)
        field, message = (match["field"], match["message"]) if match else ("", text)
        causes.append({"reason": "FieldValueInvalid", "message": message, "field": field})
    summary = "; ".join(problems)
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {summary}',
        name=name,
        kind=kind,
        group=group,
        causes=causes,
    )

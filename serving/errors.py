"""Refusals with a stable machine-readable code, a message and, for a client's, the field."""

from __future__ import annotations

__all__ = ["ClientError", "UnavailableError"]


class ClientError(Exception):
    """A request the client must fix; answered with a 4xx and never counted as a server error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class UnavailableError(Exception):
    """The server cannot take the request now (a dependency is down): a 503 the client may retry
    after ``retry_after_s``, counted as a refusal, never as a failure of the model."""

    def __init__(self, code: str, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message}}

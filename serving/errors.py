"""Client errors with a stable machine-readable code, a message and the offending field."""

from __future__ import annotations

__all__ = ["ClientError"]


class ClientError(Exception):
    """A request the client must fix; answered with a 4xx and never counted as a server error."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}

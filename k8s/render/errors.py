"""Why rendering stopped: the input was wrong, or an object came out invalid.

Two types because they have different owners: a `RenderError` is the user's to fix (a spec or
flag, named by field; the CLI exits 2), an `InvalidManifestError` is a defect of the renderer
against the schemas (the CLI exits 1 and prints nothing else).
"""

from __future__ import annotations

__all__ = ["InvalidManifestError", "RenderError"]


class RenderError(ValueError):
    """Nothing can be rendered: one "field: problem" line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InvalidManifestError(RuntimeError):
    """A rendered object failed validation: one "Kind/name: path: problem" line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

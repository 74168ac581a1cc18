"""What the routers, status store, workloads and controller share about the official client.

``CustomObjectsApi`` returns custom objects as plain JSON (typed ``object``): `custom_object`
checks that one is a mapping once, where it arrives. Patches name their media type explicitly:
given a dict, the client would otherwise pick the first type the endpoint lists, which for the
generated client is JSON Patch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONFLICT", "INVALID", "MERGE_PATCH", "NOT_FOUND", "custom_object"]

MERGE_PATCH = "application/merge-patch+json"
NOT_FOUND, CONFLICT, INVALID = 404, 409, 422


def custom_object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("metadata"), dict):
        raise ValueError(f"the API server answered {what} with something that is not an object")
    return value

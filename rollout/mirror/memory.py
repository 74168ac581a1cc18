"""A mirror that only remembers: the test double for the controller."""

from __future__ import annotations

from mlcanary.rollout.mirror.base import MirrorTarget, MirrorUnavailableError

__all__ = ["MemoryMirror"]


class MemoryMirror:
    """Keeps each model's target and records every change, in order, so that a controller
    test can assert when copies started and stopped; ``available = False`` stands for a setting
    that cannot be written."""

    def __init__(self) -> None:
        self.targets: dict[str, MirrorTarget] = {}
        self.history: list[tuple[str, MirrorTarget | None]] = []
        self.available = True

    def set(self, model: str, target: MirrorTarget | None) -> None:
        if not self.available:
            raise MirrorUnavailableError("the in-memory mirror is set unavailable")
        if self.targets.get(model) == target:
            return
        self.history.append((model, target))
        if target is None:
            self.targets.pop(model, None)
        else:
            self.targets[model] = target

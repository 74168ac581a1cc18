"""What a person can tell a running rollout: pause, resume, abort, promote.

Why the vocabulary lives in the core and not in the status stores: the engine decides what each
command does to a rollout and records which request it carried out (``status.lastCommand``), in
the same status write as the decision. A store only carries requests to the controller, each with
an identity of its own, so that the same word sent twice is two requests and a request seen again
after a restart is recognised as done.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Command", "CommandRequest"]


class Command(StrEnum):
    PROMOTE = "promote"
    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True)
class CommandRequest:
    """One request as a store delivered it: the word as written, and the request's identity.

    The word is kept as written rather than parsed by the store, so that a request the core does
    not understand is still recorded as seen (and ignored, with a reason) instead of being retried
    at every tick. ``key`` identifies the request: what ``status.lastCommand`` records once it is
    carried out, compared for equality only.
    """

    word: str
    key: str

    @classmethod
    def parse(cls, text: str) -> CommandRequest:
        """``WORD`` or ``WORD:ID``, as a request is written in an annotation; the text as written
        is its key."""
        return cls(text.partition(":")[0], text)

    @property
    def command(self) -> Command | None:
        try:
            return Command(self.word)
        except ValueError:
            return None

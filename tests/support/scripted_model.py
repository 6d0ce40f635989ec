"""`ScriptedModel`: a fake `ChatModel` for tests that replays queued replies and records every call.

`assert_complete()` checks nothing queued was left unused.
"""

from __future__ import annotations

from typing import Iterator

from mlsd_bot.errors import ModelError
from mlsd_bot.models import Message


class ScriptedModel:
    """Replays queued replies (str) or raises queued exceptions, recording each call."""

    def __init__(self, *replies: str | Exception, name: str = "scripted"):
        self.name = name
        self.queue: list[str | Exception] = list(replies)
        self.calls: list[list[Message]] = []

    def enqueue(self, *replies: str | Exception) -> "ScriptedModel":
        self.queue.extend(replies)
        return self

    def stream(self, messages: list[Message]) -> Iterator[str]:
        self.calls.append(messages)
        if not self.queue:
            raise ModelError("ScriptedModel has no reply queued")
        item = self.queue.pop(0)
        if isinstance(item, Exception):
            raise item
        for word in item.split(" "):
            yield word + " "

    def assert_complete(self) -> None:
        assert not self.queue, f"{len(self.queue)} scripted repl(ies) never used"

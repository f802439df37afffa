"""The base of every event type: a frozen, tagged msgspec Struct.

Where it sits: events are the only thing written to the log. Each concrete
event names (through class variables) which of its fields is the log key and
which is the correlation (the job or queue it belongs to), and whether it
is a request (``REQUEST``: named ``...Requested``, answered by the handler
that owns the object) or a fact. Facts are past tense; the tag on the wire
is the class name.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="type", omit_defaults=True, gc=False):
    KEY: ClassVar[str] = ""
    CORRELATION: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    # A request (someone asks for a change) rather than a fact: folds never
    # apply a request; the handler that owns the object answers it.
    REQUEST: ClassVar[bool] = False

    def key(self) -> str:
        return getattr(self, self.KEY) if self.KEY else ""

    def correlation(self) -> str:
        field = self.CORRELATION or self.KEY
        return getattr(self, field) if field else ""

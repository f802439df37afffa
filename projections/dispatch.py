"""Fold tables: the function that folds each event class, each pair checked by the type checker.

Where it sits: under every fold of ``projections`` (the cluster state, the
job, queue and node controllers' states, the read models' rows). A fold
looks the function up by the event's class (``folds.get(type(event))``), a
plain dict lookup as cheap as one by type name; ``FoldTable.on`` is how an
entry gets in, and it requires the function to take that class of event
(its second argument), so a table cannot pair an event with a function
written for another. The other arguments (``P``) and the result (``R``) are
the same for every function of a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from schemas.events.base import Event

S = TypeVar("S")
E = TypeVar("E", bound=Event)
P = ParamSpec("P")
R = TypeVar("R")


class FoldTable(Generic[S, P, R]):
    """Event class -> ``fold(subject, event, *rest) -> R``; ``folds`` is the dict a fold reads."""

    __slots__ = ("folds",)

    def __init__(self) -> None:
        # The event argument is Any here: ``on`` checked it against the class it is keyed by.
        self.folds: dict[type[Event], Callable[Concatenate[S, Any, P], R]] = {}

    def on(self, cls: type[E], fold: Callable[Concatenate[S, E, P], R]) -> None:
        """Fold events of class ``cls`` (exactly that class, as looked up) with ``fold``."""
        if cls in self.folds:
            raise ValueError(f"{cls.__name__} is folded twice")
        self.folds[cls] = fold


class EventTable(Generic[R]):
    """Event class -> ``fn(event) -> R``, for what is said of an event rather than folded from it
    (the audit timeline's details); ``on`` checks each pair as ``FoldTable.on`` does."""

    __slots__ = ("fns",)

    def __init__(self) -> None:
        self.fns: dict[type[Event], Callable[[Any], R]] = {}

    def on(self, cls: type[E], fn: Callable[[E], R]) -> None:
        if cls in self.fns:
            raise ValueError(f"{cls.__name__} is listed twice")
        self.fns[cls] = fn

"""A priority queue ordered by a session's order hooks.

Where it sits: used by actions to walk queues and jobs in hook order. The
order is total (the session's fallback ends in the name), so equal keys never
occur and the insertion counter only keeps heapq from comparing items.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class SortKey(Protocol):
    """What an order key is (``functools.cmp_to_key`` makes them): ``<`` is what heapq asks.
    Typed as typeshed's ``SupportsDunderLT[Any]``, part of what ``cmp_to_key`` returns:
    the other side is another key of the same function."""

    def __lt__(self, other: Any, /) -> object: ...  # typeshed: ``SupportsBool``, whatever ``if`` reads


class PriorityQueue(Generic[T]):
    def __init__(self, key: Callable[[T], SortKey]) -> None:
        self.key = key
        self.items: list[tuple[SortKey, int, T]] = []
        self.count = 0

    def extend(self, items: list[T]) -> None:
        """Add many items at once (one heapify instead of a push each)."""
        for item in items:
            self.count += 1
            self.items.append((self.key(item), self.count, item))
        heapq.heapify(self.items)

    def push(self, item: T) -> None:
        self.count += 1
        heapq.heappush(self.items, (self.key(item), self.count, item))

    def pop(self) -> T:
        return heapq.heappop(self.items)[2]

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

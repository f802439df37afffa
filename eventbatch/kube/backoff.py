"""Retry with exponential backoff and full jitter, for API-server calls.

Where it sits: every call the kube adapter, actuator, status writer, leader
elector and kubelet-sim make goes through ``Kube.call`` (``eventbatch.kube.client``),
which retries through ``retry`` when the failure is transient: a 5xx or 429
answer, a timeout, a refused or dropped connection. Anything else (a 4xx)
is the caller's to handle and is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Backoff:
    """Delays ``uniform(0, min(cap, base * factor**attempt))`` (AWS's "full jitter")."""

    base: float = 0.1
    cap: float = 5.0
    factor: float = 2.0
    attempts: int | None = 8  # None: retry forever
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * self.factor**attempt))


def transient(exc: BaseException) -> bool:
    """True for a failure worth retrying: 5xx, 429, timeouts, connection loss."""
    if isinstance(exc, ApiException):
        return exc.status == 429 or exc.status >= 500 or exc.status == 0
    return isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError | OSError)


async def retry(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    what: str = "request",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not transient(exc) or (backoff.attempts is not None and attempt >= backoff.attempts):
                raise
            delay = backoff.delay(attempt)
            log.warning(
                "transient API failure, retrying",
                extra={"what": what, "attempt": attempt + 1, "delay_s": round(delay, 3), "error": _short(exc)},
            )
            attempt += 1
            await sleep(delay)


def _short(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"

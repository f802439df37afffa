"""Transient API failures are retried with jittered backoff; the caller's errors are not."""

from __future__ import annotations

import random

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.backoff import Backoff
from eventbatch.kube.client import Kube
from tests.kube.apiserver import ApiServer


@pytest.fixture
async def fast(kubeconfig) -> Kube:
    from eventbatch.kube.client import connect

    kube = Kube(await connect(str(kubeconfig)), backoff=Backoff(base=0.01, cap=0.05, attempts=5), request_timeout=0.3)
    yield kube
    await kube.close()


@pytest.mark.parametrize("code", [500, 503, 429], ids=["internal-error", "unavailable", "too-many-requests"])
async def test_transient_answers_are_retried(apiserver: ApiServer, fast: Kube, code: int) -> None:
    apiserver.fail_next(3, code=code, path_contains="/nodes")
    listed = await fast.call(fast.core.list_node)
    assert listed["kind"] == "NodeList"
    assert [c.code for c in apiserver.audit if c.resource == "nodes"] == [code, code, code, 200]


async def test_a_request_with_no_answer_times_out_and_is_retried(apiserver: ApiServer, fast: Kube) -> None:
    apiserver.hang_next(1, seconds=2.0, path_contains="/nodes")
    listed = await fast.call(fast.core.list_node)
    assert listed["kind"] == "NodeList"


@pytest.mark.parametrize("code", [400, 403, 404, 409, 422], ids=str)
async def test_the_callers_errors_are_raised_at_once(apiserver: ApiServer, fast: Kube, code: int) -> None:
    apiserver.fail_next(1, code=code, path_contains="/nodes")
    with pytest.raises(ApiException) as exc:
        await fast.call(fast.core.list_node)
    assert exc.value.status == code
    assert len([c for c in apiserver.audit if c.resource == "nodes"]) == 1


async def test_retries_give_up_after_their_attempts(apiserver: ApiServer, fast: Kube) -> None:
    apiserver.fail_next(100, code=500, path_contains="/nodes")
    with pytest.raises(ApiException):
        await fast.call(fast.core.list_node)
    assert len([c for c in apiserver.audit if c.resource == "nodes"]) == 6  # the first try and 5 retries


def test_delays_are_jittered_and_capped() -> None:
    backoff = Backoff(base=0.1, cap=1.0, rng=random.Random(7))
    delays = [backoff.delay(attempt) for attempt in range(10) for _ in range(20)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert len(set(delays)) == len(delays)  # no two replicas retry in lockstep
    assert max(backoff.delay(0) for _ in range(100)) <= 0.1

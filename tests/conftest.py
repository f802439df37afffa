"""Fixtures shared by every test directory.

``kafka_bootstrap`` gives tests a Kafka-protocol broker: the one named by
``KAFKA_BOOTSTRAP_SERVERS`` if set, else a tansu broker (memory storage)
started once per session on a free loopback port and stopped at the end.
Under ``CI=true`` a test that cannot get a broker fails; elsewhere it skips
and says why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.broker import BrokerUnavailable, TansuBroker


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    try:
        broker = TansuBroker().start()
    except BrokerUnavailable as exc:
        reason = f"no Kafka broker: KAFKA_BOOTSTRAP_SERVERS is unset and tansu could not start ({exc})"
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()

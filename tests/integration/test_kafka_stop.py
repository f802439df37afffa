"""A Kafka log closes cleanly however soon after opening it is closed.

aiokafka's consumer, stopped right after it started, awaits a task of its own it
has just cancelled; the log must not pass that cancellation on to whoever closes
it (a command that opens the log and finds nothing to do), and must still close
its producer.
"""

from __future__ import annotations

import gc
import uuid
import warnings

import pytest

from eventbatch.log.factory import open_log

pytestmark = pytest.mark.kafka


async def test_a_log_opened_and_closed_at_once_closes_without_error(kafka_bootstrap: str) -> None:
    url = f"kafka://{kafka_bootstrap}/stop-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            log = open_log(url)
            await log.start()
            await log.stop()  # raised CancelledError from aiokafka's coordinator
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]

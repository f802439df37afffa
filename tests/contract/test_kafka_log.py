"""The log contract on the Kafka backend (``kafka://host:port/topic``), against a real broker."""

from __future__ import annotations

import uuid

import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from tests.contract.log_contract import EventLogContract

pytestmark = pytest.mark.kafka


class TestKafkaLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _broker(self, kafka_bootstrap: str) -> None:
        self.bootstrap = kafka_bootstrap
        self.topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"

    def create_log(self) -> EventLog:
        return open_log(f"kafka://{self.bootstrap}/{self.topic}")

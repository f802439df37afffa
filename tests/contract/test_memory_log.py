"""The log contract on the in-memory backend (``memory://``)."""

from __future__ import annotations

from eventbatch.log.factory import open_log
from eventbatch.log.memory import MemoryLog
from eventbatch.log.port import EventLog
from tests.contract.log_contract import EventLogContract


class TestMemoryLog(EventLogContract):
    def create_log(self) -> EventLog:
        return open_log("memory://")

    def reopen(self, log: EventLog) -> EventLog:
        assert isinstance(log, MemoryLog)
        return MemoryLog(store=log.store)

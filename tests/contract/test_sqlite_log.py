"""The log contract on the SQLite backend (``sqlite:///path``), plus what only it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from tests.contract.log_contract import EventLogContract


class TestSqliteLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def create_log(self) -> EventLog:
        return open_log(f"sqlite://{self.directory}/events.db?poll_interval=0.01")

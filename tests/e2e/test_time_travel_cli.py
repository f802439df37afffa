"""``eventbatch replay --to/--at`` as a user runs it: from the read models' fold state when
there is one, from position 0 otherwise, and never creating the read models."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.e2e.test_replay_cli import SCENARIO, eventbatch


def test_replay_to_starts_from_the_read_models_and_reads_only_what_follows(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    log = tmp_path / "events.db"
    assert eventbatch(log, "simulate", str(tmp_path / "scenario.yaml")).returncode == 0
    views = tmp_path / "events.views.db"
    views.unlink(missing_ok=True)
    with sqlite3.connect(log) as db:
        ((end,),) = db.execute("SELECT MAX(position) + 1 FROM events").fetchall()

    # no read models: folded from position 0, and none are created
    cold = eventbatch(log, "replay", "--to", str(end - 1), "-o", "json")
    assert cold.returncode == 0, cold.stderr
    first = json.loads(cold.stdout)
    assert (first["position"], first["from_snapshot"]) == (end - 1, -1)
    assert first["records_read"] >= end
    assert not views.exists()

    # a list command brings the read models up to the end and leaves their fold state there
    assert eventbatch(log, "job", "list").returncode == 0
    warm = eventbatch(log, "replay", "--to", str(end - 1), "-o", "json")
    assert warm.returncode == 0, warm.stderr
    second = json.loads(warm.stdout)
    assert (second["from_snapshot"], second["records_read"]) == (end - 1, 0)
    assert {k: second[k] for k in ("position", "queues", "jobs", "nodes")} == \
        {k: first[k] for k in ("position", "queues", "jobs", "nodes")}
    assert second["jobs"]["default/train"]["state"]["phase"] == "Completed"

    # an earlier position cannot start from a later state: it is folded from 0, as before
    early = json.loads(eventbatch(log, "replay", "--to", "20", "-o", "json").stdout)
    assert (early["position"], early["from_snapshot"]) == (20, -1)
    text = eventbatch(log, "replay", "--to", str(end - 1)).stdout
    assert text.startswith(f"== as of #{end - 1} (from the read models' snapshot at #{end - 1:,}, 0 records read) ==")

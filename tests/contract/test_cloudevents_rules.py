"""The framing's rules without a broker: every event type's key family is stated, and the
SQLite log gives each record the same attributes on every read."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path

from eventbatch.log.cloudevents import FAMILIES_BY_FIELD, FAMILIES_BY_TYPE, read_framed, rfc3339, subject_of
from eventbatch.log.factory import open_log
from schemas.envelope import Causation
from schemas.events import REGISTRY, JobPhaseChanged
from tests.support.events import mixed_batch, wrap


def test_every_event_type_has_a_stated_key_family() -> None:
    """A new event type keyed by a field the table does not name is caught here (its key
    would otherwise be named after the field, and the documentation would not say so)."""
    unstated = sorted(tag for tag, cls in REGISTRY.items() if tag not in FAMILIES_BY_TYPE
                      and cls.KEY not in FAMILIES_BY_FIELD)
    assert unstated == []
    assert subject_of("JobPhaseChanged", "ns/train") == "job/ns/train"
    assert subject_of("ServiceRequested", "ns/train") == "service/ns/train"
    assert subject_of("JobTemplateCreated", "ns/t") == "jobtemplate/ns/t"
    assert subject_of("WriterClaimed", "host-1") == "writer/host-1"
    assert subject_of("SomethingNewer", "ns/x") == "ns/x"  # a newer writer's type keeps its key


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_767_225_661_234) == "2026-01-01T00:01:01.234Z"
    assert rfc3339(1_767_225_661_005) == "2026-01-01T00:01:01.005Z"


async def test_the_sqlite_log_gives_each_record_the_same_attributes_on_every_read(tmp_path: Path) -> None:
    decision = wrap(JobPhaseChanged(job="ns/train", phase="Running"), causation=Causation(3, "job-controller"))
    async with open_log(f"sqlite://{tmp_path}/events.db") as log:
        await log.append(mixed_batch("train", 20) + [decision])
        async with aclosing(read_framed(log)) as reading:
            first = [item async for item in reading]
        async with aclosing(read_framed(log, 5)) as reading:
            again = [item async for item in reading]
    assert [f.attributes for f in again] == [f.attributes for f in first[5:]]
    assert len({f.attributes.id for f in first}) == 21, "two records share an id"
    last = first[-1]
    assert (last.key, last.attributes.id, last.attributes.source, last.carried) == (
        "job/ns/train", "3-0", "eventbatch://events/job-controller", False
    )
    assert last.attributes.causation == '{"position":3,"handler":"job-controller"}'

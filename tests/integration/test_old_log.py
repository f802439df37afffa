"""Logs written by the previous release are read by this one: the compatibility test of the log.

Where it sits: the test of the compatibility policy in ``docs/log.md``
("Compatibility"). ``tests/fixtures/logs/`` holds the records of real runs of
the release at commit ``ef32cf1``, as that release stored them (see its
README). Read with today's code:

- every record decodes, as the event type and version it was written as
  (nothing unknown, nothing quarantined): a removed event type, a field made
  required or given another type fails here;
- every field the old release wrote is still read: a record decoded and
  written again is the record that was stored, but for the changes listed in
  ``KNOWN_BREAKS``, each with its reason. A renamed or removed field fails
  here (msgspec would ignore it silently), and so does a listed break that no
  longer happens;
- the previous release's schema (``eventbatch schema events`` of that release)
  against today's, for the event types the logs do not hold as well: no type
  or field gone, none of another type or default, none newly required;
- ``eventbatch replay --verify`` on each log finds it clean (no handler
  failure, nothing quarantined or unknown) and every handler reproduces the
  old decisions, except the scheduler's, whose placement rules changed on
  purpose since that release (``SCHEDULER_CHANGED``): its divergences are
  listed, not failed; the job, queue and node controllers, the timers and the
  simulated kubelet must decide as they did.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventbatch.log.codec import decode
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope, encode_record
from schemas.events import REGISTRY, JobCommandRequested, json_schema

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "tests" / "fixtures" / "logs"
FIXTURES = {
    "previous-release": LOGS / "previous-release.jsonl",
    "preemption": LOGS / "preemption.jsonl",
    "starving-gang-reserve": LOGS / "starving-gang-reserve.jsonl.gz",
}

KNOWN_BREAKS: dict[tuple[str, str], str] = {
    ("JobCommandRequested", "payload.command.targetObject"): (
        "a Command's targetObject was renamed target (Volcano's name) at a55ebf3 without keeping the old name "
        "readable: a command of the previous release reads as one without a target. Its decisions do not change "
        "(the job is the request's job field, the namespace the Command's own), but the field is lost to every "
        "reader; by the policy it should have been added as target while targetObject stayed readable"
    ),
}
"""Fields of the previous release that today's code does not read: (event type, field path) -> why."""

READ_BY_A_NEWER_VERSION: frozenset[tuple[str, int]] = frozenset()
"""(event type, old version) pairs that a newer version of the type reads on purpose (none yet)."""

SCHEDULER_CHANGED = "scheduler"
"""The one handler whose decisions on these logs changed on purpose since the release that wrote them."""


def records(name: str) -> list[bytes]:
    path = FIXTURES[name]
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.splitlines()


def _lost(old: Any, new: Any, path: str) -> list[str]:
    """The paths of what ``old`` holds and ``new`` does not (or holds differently)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key, value in old.items():
            where = f"{path}.{key}" if path else key
            out += [where] if key not in new else _lost(value, new[key], where)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [lost for i, (a, b) in enumerate(zip(old, new, strict=True)) for lost in _lost(a, b, f"{path}[{i}]")]
    return [] if old == new else [path]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_record_of_the_previous_release_decodes_as_the_type_it_was_written_as(name: str) -> None:
    types = set()
    for position, data in enumerate(records(name)):
        item = decode(position, data)
        assert isinstance(item, Envelope), f"{name} #{position}: {item!r}"
        written = json.loads(data)
        assert type(item.payload).__name__ == item.type == written["type"]
        assert item.version == written.get("version", 1)
        assert item.version == item.payload.VERSION or (item.type, item.version) in READ_BY_A_NEWER_VERSION, (
            f"{name} #{position}: a {item.type} of version {item.version} read by version {item.payload.VERSION} "
            f"of the type: list it in READ_BY_A_NEWER_VERSION once that version reads the old shape with its "
            f"meaning, or refuse it (docs/log.md, Compatibility)"
        )
        types.add(item.type)
    assert types <= set(REGISTRY)


def test_the_fixtures_hold_most_event_types_of_the_previous_release() -> None:
    types = {json.loads(data)["type"] for name in FIXTURES for data in records(name)}
    assert len(types) >= 41, sorted(types)  # of the 67 types at ef32cf1 (tests/fixtures/logs/README.md)


def test_every_field_the_previous_release_wrote_is_read() -> None:
    found: dict[tuple[str, str], int] = {}
    for name in sorted(FIXTURES):
        for position, data in enumerate(records(name)):
            item = decode(position, data)
            assert isinstance(item, Envelope)
            again = msgspec.json.decode(encode_record(item))
            for path in _lost(json.loads(data), again, ""):
                where = (item.type, _generic(path))
                found[where] = found.get(where, 0) + 1
    unexpected = {where: n for where, n in found.items() if where not in KNOWN_BREAKS}
    assert not unexpected, (
        f"fields written by the previous release that this build no longer reads (a renamed or removed field, or a "
        f"changed default), as (event type, field): records: {unexpected}; see docs/log.md, Compatibility"
    )
    assert set(found) == set(KNOWN_BREAKS), f"a listed break no longer happens: {set(KNOWN_BREAKS) - set(found)}"


OLD_SCHEMA = LOGS / "previous-release.schema.json"
"""``eventbatch schema events`` of the same release: every type it had, in the logs or not."""

KNOWN_SCHEMA_BREAKS: dict[tuple[str, str], str] = {
    ("Command", "targetObject"): KNOWN_BREAKS[("JobCommandRequested", "payload.command.targetObject")],
    ("ObjectReference", ""): "the type of targetObject, gone with it",
}


def _kind(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "ref:" + prop["$ref"].rsplit("/", 1)[1]
    if "anyOf" in prop:
        return "anyOf:" + ",".join(sorted(_kind(p) for p in prop["anyOf"]))
    return str(prop.get("type", "enum" if "enum" in prop else "any"))


def test_every_type_and_field_of_the_previous_release_is_read_the_same() -> None:
    """The previous release's schema against today's, for the 26 event types its logs here do not hold too:
    no type or field gone, none of another type or default, no field newly required."""
    old = json.loads(OLD_SCHEMA.read_text())["$defs"]
    new = json_schema()["$defs"]
    found: dict[tuple[str, str], str] = {}
    for name, was in old.items():
        now = new.get(name)
        if now is None:
            found[name, ""] = "type removed"
            continue
        fields = now.get("properties", {})
        for field, prop in was.get("properties", {}).items():
            if field not in fields:
                found[name, field] = "field removed or renamed"
            elif _kind(prop) != _kind(fields[field]):
                found[name, field] = f"type {_kind(prop)} -> {_kind(fields[field])}"
            elif prop.get("default") != fields[field].get("default"):
                found[name, field] = f"default {prop.get('default')!r} -> {fields[field].get('default')!r}"
        for field in set(now.get("required", [])) - set(was.get("required", [])):
            found[name, field] = "newly required"
    unexpected = {where: what for where, what in found.items() if where not in KNOWN_SCHEMA_BREAKS}
    assert not unexpected, f"changes that need a new type version (docs/log.md, Compatibility): {unexpected}"
    assert set(found) == set(KNOWN_SCHEMA_BREAKS), f"a listed break no longer happens: {set(KNOWN_SCHEMA_BREAKS) - set(found)}"


def _generic(path: str) -> str:
    """A field path without list indexes: ``spec.tasks[0].name`` -> ``spec.tasks[].name``."""
    return re.sub(r"\[\d+\]", "[]", path)


def test_a_command_of_the_previous_release_reads_without_its_target() -> None:
    """The break listed in KNOWN_BREAKS, as a reader sees it: the job is still named, the target is gone."""
    commands = []
    for position, data in enumerate(records("previous-release")):
        item = decode(position, data)
        if isinstance(item, Envelope) and isinstance(item.payload, JobCommandRequested):
            commands.append((json.loads(data)["payload"]["command"], item.payload))
    assert len(commands) == 4
    for written, read in commands:
        assert written["targetObject"]["kind"] == "Job" and "target" not in written
        assert read.command.target_object is None
        assert read.job.endswith("/" + written["targetObject"]["name"])  # the job is named by the request


def _load(name: str, path: Path) -> None:
    async def load() -> None:
        async with open_log(f"sqlite:///{path}") as log:
            await log.append_raw(records(name))

    asyncio.run(load())


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_replay_verify_reproduces_the_previous_release_but_the_scheduler_changes(name: str, tmp_path: Path) -> None:
    log = tmp_path / "events.db"
    _load(name, log)
    done = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", "replay", "--verify", "-o", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["events"] == len(records(name))
    assert report["clean"], f"handler failures, quarantined or unknown records: {done.stdout[-2000:]}"
    others = [d for d in report["divergences"] if d["handler"] != SCHEDULER_CHANGED]
    assert not others, f"decisions of the previous release that this build no longer makes: {others[:5]}"
    assert not report.get("effect_divergences"), report["effect_divergences"][:5]
    assert done.returncode == (1 if report["divergences"] else 0)
    matched = {handler: counts["decisions_matched"] for handler, counts in report["handlers"].items()}
    assert matched["job-controller"] > 0 and matched["queue-controller"] > 0


# --- what a reader does with what it does not know (the policy's reader rules) ----------------------


def _event_structs() -> set[type[msgspec.Struct]]:
    """Every Struct type a payload of any event type is decoded into."""
    seen: set[type[msgspec.Struct]] = set()

    def walk(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                return
            seen.add(info.cls)
            for f in info.fields:
                walk(f.type)
        for attr in ("types", "item_type", "key_type", "value_type"):
            inner = getattr(info, attr, None)
            for item in inner if isinstance(inner, tuple) else ([inner] if inner is not None else []):
                walk(item)

    for cls in REGISTRY.values():
        walk(msgspec.inspect.type_info(cls))
    return seen


def test_no_type_on_the_log_refuses_a_field_it_does_not_know() -> None:
    strict = sorted(cls.__qualname__ for cls in _event_structs() if cls.__struct_config__.forbid_unknown_fields)
    assert not strict, f"forbid_unknown_fields on the log quarantines every record of a newer writer: {strict}"


async def test_a_newer_writers_records_are_read_skipped_or_quarantined_as_the_policy_says(tmp_path: Path) -> None:
    [first, *_] = records("previous-release")  # PriorityClassAdded
    newer_field = json.loads(first)
    newer_field["payload"]["preemptionHint"] = "soon"  # a field added by a newer release
    newer_field["future"] = {"x": 1}  # and one in the envelope
    newer_type = {"type": "QueueRenamed", "key": "q", "recorded_at": 5, "payload": {"type": "QueueRenamed", "q": 1}}
    broken = json.loads(first)
    broken["payload"]["value"] = "high"  # a field of another type: cannot be read with its meaning
    async with open_log(f"sqlite:///{tmp_path / 'events.db'}") as log:
        await log.append_raw([json.dumps(r).encode() for r in (newer_field, newer_type, broken)] + [first])
        read = [envelope async for envelope in log.read(0)]
        assert [e.position for e in read] == [0, 3]
        assert read[0].payload == read[1].payload  # the unknown fields are ignored, the rest is read
        assert log.stats.unknown_types == {"QueueRenamed": 1}  # skipped and counted
        assert [q.position for q in await log.quarantined()] == [2]  # quarantined, with the reason

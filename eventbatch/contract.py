"""The published contract of the event log: its JSON Schema and its AsyncAPI document.

Where it sits: at the edge between the log and the teams that read it without
eventbatch. Both documents are generated from the types in ``schemas/``
(``schemas.envelope.Envelope``, ``schemas.events.REGISTRY``) with msgspec's
JSON Schema generation, and from the Kafka framing
(``eventbatch.log.cloudevents``: the record key and the CloudEvents headers),
so they say what the code writes and reads. ``eventbatch schema envelope``
and ``eventbatch schema asyncapi`` print them; ``eventbatch schema export
DIR`` writes them as the files checked into ``docs/schema/`` (``--check``
compares instead), and ``tests/unit/test_contract.py`` fails when the
checked-in files differ from what the code generates.

- ``events.schema.json`` (JSON Schema 2020-12): one log record, the envelope
  without its position (the log assigns that), whose ``payload`` is one of
  the event types (``oneOf``, told apart by ``type``), and whose ``version``
  is the payload type's version (``VERSION``; a record leaves it out when it
  is 1). Every event type is in ``$defs`` under its tag.
- ``asyncapi.yaml`` (AsyncAPI 3.0): the log's topic as a channel (the topic
  of the log URL ``kafka://HOST:PORT/TOPIC``) and its quarantine topic, one
  message per event type with its payload schema, its Kafka key and the
  CloudEvents binary-mode headers, and the operations (append, read).

The compatibility policy these documents are held to is in ``docs/log.md``
("Compatibility"); ``tests/integration/test_old_log.py`` replays logs written
by the previous release against them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import yaml

from eventbatch import __version__
from eventbatch.log.cloudevents import CONTENT_TYPE, SPECVERSION, TYPE_PREFIX, family_of
from schemas.envelope import Envelope
from schemas.events import REGISTRY, REQUESTS

JSON_SCHEMA_FILE = "events.schema.json"
ASYNCAPI_FILE = "asyncapi.yaml"
REGENERATE = "eventbatch schema export docs/schema"
"""The command that writes the checked-in documents again (named by the drift test and ``--check``)."""

_ENVELOPE_DESCRIPTION = (
    "One record of the eventbatch log: the envelope of one event, as JSON. The log assigns each record "
    "its position (the Kafka offset; the SQLite row), which is not part of the record. Fields at their "
    "default are left out when written (causation, correlation, version 1, epoch 0), and a reader takes "
    "an absent field as its default. `type` is the payload's event type and `version` that type's "
    "version. A reader ignores fields it does not know; see docs/log.md, Compatibility."
)
_FIELD_DESCRIPTIONS = {
    "type": "The event type: the payload's `type` (its tag).",
    "key": "The object the event is about, e.g. `ns/name` for a job (the Kafka key is `<family>/<key>`).",
    "recorded_at": "When it was appended: milliseconds since the epoch on the writer's clock (a "
    "simulation's virtual clock starts at 0).",
    "payload": "The event, one of the event types, told apart by its `type`.",
    "causation": "The trigger this record answers (its log position and the handler that decided); "
    "absent for requests and observations.",
    "correlation": "The job or queue the event belongs to (`ns/name`, or the queue's name); absent when none.",
    "version": "The payload type's version (absent: 1). A type whose meaning changes gets a new version.",
    "epoch": "The pipeline writer's claim position + 1 (absent: 0, a record of any other appender).",
}


def _versions() -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for tag, cls in REGISTRY.items():
        by_version.setdefault(cls.VERSION, []).append(tag)
    return dict(sorted(by_version.items()))


def _components(ref_template: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The envelope's schema and every schema it refers to, the payload as a ``oneOf`` of the event types."""
    ((envelope_ref,), components) = msgspec.json.schema_components([Envelope], ref_template=ref_template)
    components = copy.deepcopy(components)
    envelope = components["Envelope"]
    assert envelope_ref == {"$ref": ref_template.format(name="Envelope")}
    properties = envelope["properties"]
    del properties["position"]  # assigned by the log, never written in a record
    envelope["description"] = _ENVELOPE_DESCRIPTION
    for name, text in _FIELD_DESCRIPTIONS.items():
        properties[name] = {**properties[name], "description": text}
    union = properties["payload"]
    properties["payload"] = {
        "type": "object",
        "description": _FIELD_DESCRIPTIONS["payload"],
        "oneOf": [{"$ref": ref_template.format(name=tag)} for tag in REGISTRY],
        # the tag's property only: each event type's schema names its tag (``type``: enum), which is
        # all the mapping said, and validators that read a discriminator (ajv) take no mapping
        "discriminator": {"propertyName": union.get("discriminator", {}).get("propertyName", "type")},
    }
    # The version each type is written with (a record leaves version 1 out).
    rules = []
    for version, tags in _versions().items():
        then: dict[str, Any] = {"properties": {"version": {"const": version}}}
        if version != 1:
            then["required"] = ["version"]
        rules.append({"if": {"properties": {"type": {"enum": tags}}, "required": ["type"]}, "then": then})
    envelope["allOf"] = rules
    for tag, cls in REGISTRY.items():
        event = components[tag]
        kind = "a request" if tag in REQUESTS else "a fact"
        event["$comment"] = f"event type {tag}, version {cls.VERSION}, {kind}"
    return envelope, components


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one log record (``docs/schema/events.schema.json``)."""
    _, components = _components("#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "eventbatch log record",
        "description": _ENVELOPE_DESCRIPTION,
        "$ref": "#/$defs/Envelope",
        "$defs": components,
    }


def _asyncapi_schema(schema: Any) -> Any:
    """An AsyncAPI Schema Object from a JSON Schema: its ``discriminator`` is the property's name."""
    if isinstance(schema, dict):
        out = {key: _asyncapi_schema(value) for key, value in schema.items() if key != "$comment"}
        if isinstance(schema.get("discriminator"), dict):
            out["discriminator"] = schema["discriminator"]["propertyName"]
        return out
    if isinstance(schema, list):
        return [_asyncapi_schema(item) for item in schema]
    return schema


def _summary(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) if doc else cls.__name__


_HEADERS: list[tuple[str, str, bool]] = [
    ("ce_specversion", f"CloudEvents spec version, always `{SPECVERSION}`.", True),
    ("ce_id", "The event's id: unique within its source, the same on every read of the record from any backend; "
     "a batch stored twice by a producer retry repeats its ids (the duplicates a consumer may drop). How it "
     "is made: docs/log.md.", True),
    ("ce_source", "`eventbatch://<log>/<handler>`: the log's name (the topic) and the handler whose decision "
     "the record is, or `client` for a record without causation (requests, observations).", True),
    ("ce_type", f"`{TYPE_PREFIX}<event type>.v<version>`.", True),
    ("ce_time", "`recorded_at` as RFC 3339 UTC with milliseconds.", True),
    ("ce_subject", "The object the event is about: the record's Kafka key, `<family>/<envelope key>`.", True),
    ("content-type", f"The record's content type, always `{CONTENT_TYPE}`.", True),
    ("ce_causation", "Extension: the envelope's causation as compact JSON "
     "(`{\"position\":12,\"handler\":\"job-controller\",\"index\":1}`); absent without causation.", False),
    ("ce_correlation", "Extension: the envelope's correlation (the job or queue, `ns/name`); absent when empty.",
     False),
]


def _cloudevents_headers() -> dict[str, Any]:
    """The headers every event record carries (``components/schemas/CloudEventsHeaders``)."""
    properties: dict[str, Any] = {name: {"type": "string", "description": text} for name, text, _ in _HEADERS}
    properties["ce_specversion"]["const"] = SPECVERSION
    properties["content-type"]["const"] = CONTENT_TYPE
    return {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka protocol binding, binary content mode: the attributes as headers "
        "(values UTF-8), the record as the Kafka value. A record appended before the framing existed "
        "has no headers; its attributes are computed from the record (docs/log.md).",
        "properties": properties,
        "required": [name for name, _, required in _HEADERS if required],
    }


def _headers(tag: str, version: int, family: str) -> dict[str, Any]:
    """One event type's headers: the common ones, its ``ce_type`` and the family of its ``ce_subject``."""
    return {
        "type": "object",
        "allOf": [{"$ref": "#/components/schemas/CloudEventsHeaders"}],
        "properties": {
            "ce_type": {"type": "string", "const": f"{TYPE_PREFIX}{tag}.v{version}"},
            "ce_subject": {"type": "string", "pattern": f"^{family}/"},
        },
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the log's Kafka topic (``docs/schema/asyncapi.yaml``)."""
    ref = "#/components/schemas/{name}"
    _, components = _components(ref)
    schemas = _asyncapi_schema(components)
    messages: dict[str, Any] = {}
    for tag, cls in REGISTRY.items():
        family = family_of(tag) or ""
        record = {
            "allOf": [{"$ref": ref.format(name="Envelope")}],
            "properties": {
                "type": {"const": tag},
                "payload": {"$ref": ref.format(name=tag)},
                "version": {"const": cls.VERSION},
            },
            "required": ["type", "payload"] + (["version"] if cls.VERSION != 1 else []),
        }
        messages[tag] = {
            "name": tag,
            "title": f"{tag} (version {cls.VERSION}, {'request' if tag in REQUESTS else 'fact'})",
            "summary": _summary(cls),
            "contentType": CONTENT_TYPE,
            "headers": _headers(tag, cls.VERSION, family),
            "payload": record,
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "pattern": f"^{family}/",
                        "description": f"`{family}/<envelope key>` (the `{cls.KEY}` field), "
                        "the same as the ce_subject header.",
                    },
                    "bindingVersion": "0.5.0",
                }
            },
        }
    messages["QuarantinedRecord"] = {
        "name": "QuarantinedRecord",
        "title": "A record the log could not decode",
        "summary": "The record's bytes as they were appended, keyed by its position in the log's topic.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "properties": {"error": {"type": "string", "description": "Why the record could not be decoded."}},
            "required": ["error"],
        },
        "payload": {"type": "string", "description": "The record's bytes, as on the log's topic."},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "pattern": "^[0-9]+$", "description": "The record's position (offset)."},
                "bindingVersion": "0.5.0",
            }
        },
    }
    topic = {
        "description": "The TOPIC of the log URL `kafka://HOST:PORT/TOPIC` (`eventbatch --log`, "
        "EVENTBATCH_LOG), e.g. `events`.",
        "examples": ["events"],
    }
    event_refs = {tag: {"$ref": f"#/components/messages/{tag}"} for tag in REGISTRY}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "eventbatch event log",
            "version": __version__,
            "description": "Every job, queue, pod and node transition of eventbatch as an immutable event on "
            "one ordered log. On Kafka the log is one topic with one partition (offset = position); "
            "each record's value is the JSON of its envelope (docs/schema/events.schema.json), its key "
            "the object the event is about, and its headers the CloudEvents attributes. How event "
            "types may change, and how readers treat what they do not know: docs/log.md, "
            "Compatibility. Generated by `eventbatch schema asyncapi` from the code.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The broker of the log URL `kafka://HOST:PORT/TOPIC`.",
                "variables": {"bootstrap": {"description": "HOST:PORT of the log URL.", "default": "localhost:9092"}},
            }
        },
        "channels": {
            "events": {
                "address": "{topic}",
                "title": "The event log",
                "description": "The log's topic, named by the log URL. One partition, so that its order is total; "
                "consumer positions are committed offsets of the group `eventbatch.<name>`.",
                "parameters": {"topic": topic},
                "messages": event_refs,
                "bindings": {"kafka": {"partitions": 1, "bindingVersion": "0.5.0"}},
            },
            "quarantine": {
                "address": "{topic}.quarantine",
                "title": "Records that could not be decoded",
                "description": "A compacted topic beside the log: a record a reader could not decode, "
                "with the error in a header, once per position.",
                "parameters": {"topic": topic},
                "messages": {"QuarantinedRecord": {"$ref": "#/components/messages/QuarantinedRecord"}},
            },
        },
        "operations": {
            "append": {
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "summary": "Requests and observations from any appender; facts from the one pipeline writer.",
                "messages": [{"$ref": f"#/channels/events/messages/{tag}"} for tag in REGISTRY],
            },
            "read": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
                "summary": "Read in offset order; skip unknown event types, ignore unknown fields.",
                "messages": [{"$ref": f"#/channels/events/messages/{tag}"} for tag in REGISTRY],
            },
        },
        "components": {
            "messages": messages,
            "schemas": {**schemas, "CloudEventsHeaders": _cloudevents_headers()},
        },
    }


def render() -> dict[str, str]:
    """The checked-in documents as text, by file name."""
    return {
        JSON_SCHEMA_FILE: json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n",
        ASYNCAPI_FILE: render_asyncapi(),
    }


def render_asyncapi() -> str:
    header = "# Generated by `eventbatch schema asyncapi` from schemas/; do not edit (`" + REGENERATE + "`).\n"
    return header + yaml.dump(asyncapi(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    """YAML without anchors: a value used twice is written twice, as a reader of the document expects."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def stale(directory: Path) -> list[str]:
    """The documents in ``directory`` that differ from what the code generates (or are missing)."""
    out = []
    for name, text in render().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def write(directory: Path) -> list[Path]:
    """Write the documents into ``directory`` (made if missing, its parent must exist); the paths written."""
    directory.mkdir(exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

"""The published contract (``docs/schema/``) is what the code writes and reads.

Where it sits: the drift test of ``eventbatch.contract``. The checked-in
JSON Schema and AsyncAPI documents are generated again from ``schemas/`` and
compared byte for byte; a change to an event type, the envelope or the
Kafka framing that is not exported fails here, naming the command that
writes them again. The AsyncAPI document's headers and keys are checked
against what the Kafka backend's framing (``eventbatch.log.cloudevents``)
puts on a real record of every event type.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import yaml

from eventbatch import contract
from eventbatch.cli import main
from eventbatch.log.cloudevents import Sources, kafka_framing
from schemas.envelope import Causation, Envelope, encode_record
from schemas.events import REGISTRY
from schemas.events.base import Event

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "schema"


@pytest.fixture(scope="module")
def document() -> dict:
    """The checked-in AsyncAPI document, read once (C loader when PyYAML has it)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((DOCS / contract.ASYNCAPI_FILE).read_text(), Loader=loader)


def test_the_checked_in_documents_are_what_the_code_generates() -> None:
    for name, text in contract.render().items():
        path = DOCS / name
        assert path.is_file(), f"{path} is missing: run `{contract.REGENERATE}`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} differs from what the code generates (an event type, the envelope or the "
            f"Kafka framing changed): run `{contract.REGENERATE}` and commit the result"
        )


def test_the_json_schema_has_the_envelope_and_every_event_type_with_its_version() -> None:
    schema = json.loads((DOCS / contract.JSON_SCHEMA_FILE).read_text())
    envelope = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    assert "position" not in envelope["properties"]  # the log assigns it; a record never holds it
    assert set(envelope["required"]) == {"type", "key", "recorded_at", "payload"}
    payload = envelope["properties"]["payload"]
    assert [ref["$ref"] for ref in payload["oneOf"]] == [f"#/$defs/{tag}" for tag in REGISTRY]
    assert payload["discriminator"] == {"propertyName": "type"}
    versions = {}
    for rule in envelope["allOf"]:
        for tag in rule["if"]["properties"]["type"]["enum"]:
            versions[tag] = rule["then"]["properties"]["version"]["const"]
    assert versions == {tag: cls.VERSION for tag, cls in REGISTRY.items()}
    for tag in REGISTRY:
        assert schema["$defs"][tag]["properties"]["type"] == {"enum": [tag]}


def _envelope(tag: str) -> Envelope:
    """A record of type ``tag`` as the log holds one: the envelope, with a causation and a correlation."""
    cls = REGISTRY[tag]
    fields = {name: "ns/x" for name in cls.__struct_fields__ if name == cls.KEY}
    payload = _minimal(cls, fields)
    return Envelope(type=tag, key=payload.key(), recorded_at=1_700_000_000_000, payload=payload,
                    causation=Causation(position=3, handler="job-controller"), correlation="ns/x", version=cls.VERSION)


def _minimal(cls: type[Event], given: dict[str, str]) -> Event:
    """An instance of the event type with its required fields at the zero of their type."""
    schema = msgspec.json.schema(cls)
    definition = schema["$defs"][cls.__name__]
    zero = {"string": "ns/x", "integer": 0, "boolean": False, "array": [], "object": {}, "number": 0}
    data: dict[str, object] = {"type": cls.__name__}
    for name in definition.get("required", []):
        if name == "type":
            continue
        prop = definition["properties"][name]
        data[name] = given.get(name, zero.get(prop.get("type", "object"), {}))
    return msgspec.convert(data, cls)


@pytest.mark.parametrize("tag", sorted(REGISTRY))
def test_every_message_names_the_headers_and_key_the_kafka_backend_writes(document: dict, tag: str) -> None:
    envelope = _envelope(tag)
    key, headers = kafka_framing(envelope, encode_record(envelope), Sources("events"))
    message = document["components"]["messages"][tag]
    common = document["components"]["schemas"]["CloudEventsHeaders"]
    assert {name for name, _ in headers} <= set(common["properties"]), "a header the document does not name"
    assert set(common["required"]) <= {name for name, _ in headers}, "a required header the backend does not write"
    written = dict(headers)
    assert written["ce_type"].decode() == message["headers"]["properties"]["ce_type"]["const"]
    prefix = message["bindings"]["kafka"]["key"]["pattern"].removeprefix("^")
    assert key.decode().startswith(prefix) and written["ce_subject"] == key
    assert written["ce_specversion"].decode() == common["properties"]["ce_specversion"]["const"]
    assert written["content-type"].decode() == common["properties"]["content-type"]["const"]
    assert message["payload"]["properties"]["payload"] == {"$ref": f"#/components/schemas/{tag}"}


def test_the_channel_is_the_topic_of_the_log_url(document: dict) -> None:
    assert document["asyncapi"].startswith("3.")
    events = document["channels"]["events"]
    assert events["address"] == "{topic}" and "kafka://HOST:PORT/TOPIC" in events["parameters"]["topic"]["description"]
    assert set(events["messages"]) == set(REGISTRY)
    assert document["channels"]["quarantine"]["address"] == "{topic}.quarantine"


def test_export_check_fails_on_a_stale_file_and_export_writes_it_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "export", str(tmp_path)]) == 0
    assert main(["schema", "export", "--check", str(tmp_path)]) == 0
    stale = tmp_path / contract.ASYNCAPI_FILE
    stale.write_text(stale.read_text().replace("ce_correlation", "ce_correlation_id", 1))
    capsys.readouterr()
    assert main(["schema", "export", "--check", str(tmp_path)]) == 1
    said = capsys.readouterr().err
    assert f"{stale}: not what the code generates; run `eventbatch schema export {tmp_path}`" in said
    assert main(["schema", "export", str(tmp_path)]) == 0
    assert stale.read_text() == contract.render()[contract.ASYNCAPI_FILE]

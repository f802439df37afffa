"""The virtual clock wakes sleepers in deadline order and never goes back;
the codec round-trips every event type and sorts bad records from unknown ones."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from eventbatch.clock import VirtualClock
from eventbatch.log import codec
from schemas.envelope import Causation, Envelope
from schemas.events import REGISTRY, PodFailed, json_schema


async def test_virtual_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = VirtualClock(start=100)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, deadline: int) -> None:
        await clock.sleep_until(deadline)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, d)) for n, d in [("late", 900), ("early", 200), ("mid", 500)]]
    await asyncio.sleep(0)
    assert clock.next_deadline() == 200
    clock.advance_to(600)
    await asyncio.sleep(0)
    assert woke == [("early", 600), ("mid", 600)]
    assert clock.next_deadline() == 900
    clock.advance(300)
    await asyncio.gather(*tasks)
    assert woke[-1] == ("late", 900)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(10)


async def test_sleeping_until_the_past_returns_at_once() -> None:
    clock = VirtualClock(start=50)
    await asyncio.wait_for(clock.sleep_until(10), timeout=1)
    assert clock.next_deadline() is None


def test_every_event_type_has_a_json_schema() -> None:
    schema = json_schema()
    assert len(schema["anyOf"]) == len(REGISTRY)
    assert set(REGISTRY) <= set(schema["$defs"])


def test_codec_round_trips_an_envelope() -> None:
    envelope = Envelope.wrap(
        PodFailed(pod="ml/w-0", job="ml/train", exit_code=3, reason="Error"),
        recorded_at=1234,
        causation=Causation(7, "sim", 2),
    )
    decoded = codec.decode(41, codec.encode(envelope))
    assert decoded == envelope.at(41)
    assert decoded.correlation == "ml/train" and decoded.key == "ml/w-0"


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        (lambda b: b.replace(b'"PodFailed"', b'"PodExploded"'), codec.Unknown),
        (lambda b: b[:-5], codec.Undecodable),
        (lambda b: b.replace(b'"exit_code":3', b'"exit_code":"three"'), codec.Undecodable),
        (lambda b: b.replace(b'"recorded_at":1', b'"recorded_at":"x'), codec.Undecodable),
    ],
    ids=["newer-type", "truncated", "bad-field", "bad-header"],
)
def test_codec_tells_unknown_from_undecodable(mutate, kind) -> None:
    data = codec.encode(Envelope.wrap(PodFailed(pod="a/b", exit_code=3), recorded_at=1))
    result = codec.decode(9, mutate(data))
    assert isinstance(result, kind)
    assert result.position == 9


def test_events_are_immutable() -> None:
    event = PodFailed(pod="a/b", exit_code=1)
    with pytest.raises(AttributeError):
        event.exit_code = 2  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(event))["type"] == "PodFailed"

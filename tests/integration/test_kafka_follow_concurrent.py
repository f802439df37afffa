"""A reader following a Kafka log live sees every record once, in order, while several writers append.

A broker may make concurrent appends visible out of order: a fetch at the tail
can return a later append before an earlier one is served (tansu does, a few
times in ten thousand records). A follower that took such a fetch as it came
skipped the earlier records for good: under load, ``serve`` left a
``JobSubmitRequested`` unanswered because its job controller never saw it.
``KafkaLog`` now takes only what follows its position without a hole and
fetches the rest again.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import aclosing

import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from schemas.envelope import Envelope
from schemas.events import QueueCreateRequested
from schemas.loaders import load_manifests

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WRITERS = 4
BATCHES = 1500  # per writer; batches of 1-4 records: about 15,000 records in all


QUEUE = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: q}\nspec: {weight: 1}\n"


def _event(writer: int, n: int) -> Envelope:
    return Envelope.wrap(QueueCreateRequested(queue=f"w{writer}-{n}", manifest=load_manifests(QUEUE)[0]), recorded_at=n)


async def _write(url: str, writer: int, acked: dict[int, bytes]) -> None:
    async with open_log(url) as log:
        n = 0
        for batch in range(BATCHES):
            size = 1 + (batch * 7 + writer) % 4
            envelopes = [_event(writer, n + i) for i in range(size)]
            n += size
            positions = await log.append(envelopes)
            for envelope, position in zip(envelopes, positions, strict=True):
                acked[position] = envelope.payload.queue.encode()


async def _follow(log: EventLog, seen: list[int], names: dict[int, bytes], until: asyncio.Event, total: list[int]):
    async with aclosing(log.read(0, follow=True)) as events:
        async for envelope in events:
            seen.append(envelope.position)
            names[envelope.position] = envelope.payload.queue.encode()
            if until.is_set() and envelope.position >= total[0] - 1:
                return


async def test_a_live_follower_misses_no_record_of_concurrent_writers(kafka_bootstrap: str) -> None:
    url = f"kafka://{kafka_bootstrap}/follow-{uuid.uuid4().hex[:8]}"
    acked: dict[int, bytes] = {}
    seen: list[int] = []
    names: dict[int, bytes] = {}
    done, total = asyncio.Event(), [1 << 60]
    async with open_log(url) as reader:
        follower = asyncio.ensure_future(_follow(reader, seen, names, done, total))
        await asyncio.gather(*(_write(url, writer, acked) for writer in range(WRITERS)))
        total[0] = len(acked)
        done.set()
        await asyncio.wait_for(follower, 120)  # it returns at the last position
    assert len(acked) > 10_000
    assert seen == list(range(len(acked))), "the follower skipped or repeated a position"
    assert names == acked, "a position holds another record than the one its append returned"

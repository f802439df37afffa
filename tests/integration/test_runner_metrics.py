"""What ``serve``'s ``/metrics`` says about each handler: besides its decisions and
position, how many of its decisions failed (dead-lettered as ``HandlerFailed``)
and how many answers it found twice on the log and folded once."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eventbatch.app import build_pipeline
from eventbatch.clock import VirtualClock
from eventbatch.log.factory import open_log
from eventbatch.metrics import Metrics
from eventbatch.settings import Settings
from schemas.envelope import Envelope
from schemas.events import SchedulingRequested
from tests.integration.echo_handler import NAME, EchoHandler


def request(at: int) -> Envelope:
    return Envelope.wrap(SchedulingRequested(now=at), recorded_at=at)


def scraped(pipeline) -> str:
    return generate_latest(Metrics(lambda: pipeline).registry).decode()


def handler_metrics(pipeline) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("step", "")): sample.value
        for family in text_string_to_metric_families(scraped(pipeline))
        for sample in family.samples
        if sample.labels.get("handler") == NAME
    }


async def test_metrics_count_a_handlers_failures_and_the_answers_it_ignored_as_duplicates() -> None:
    async with open_log("memory://") as log:
        await log.append([request(1), request(2), request(3)])
        first = build_pipeline(log=log, clock=VirtualClock(0), handlers=[EchoHandler(fail_on={1})], settings=Settings())
        await first.settle()
        metrics = handler_metrics(first)
        assert metrics[("eventbatch_handler_failures_total", "decide")] == 1
        assert metrics[("eventbatch_handler_failures_total", "fold")] == 0
        assert metrics[("eventbatch_handler_duplicates_ignored_total", "")] == 0
        assert metrics[("eventbatch_handler_decisions_total", "")] == 7  # 3 + HandlerFailed + 3

        # the answer to the first request appended a second time (a writer that crashed after its append)
        answers: list[Envelope] = []
        async for envelope in log.read(0):
            if envelope.causation is not None and envelope.causation.position == 0:
                answers.append(envelope)
            if envelope.position + 1 >= await log.end_position():
                break
        await log.append([Envelope.wrap(e.payload, recorded_at=e.recorded_at, causation=e.causation) for e in answers])
        restarted = build_pipeline(log=log, clock=VirtualClock(0), handlers=[EchoHandler(fail_on={1})], settings=Settings())
        await restarted.settle()
        metrics = handler_metrics(restarted)
        assert metrics[("eventbatch_handler_duplicates_ignored_total", "")] == 3
        assert metrics[("eventbatch_handler_failures_total", "decide")] == 0  # not retried after a restart

        # each metric's lines stay together in the text Prometheus reads
        names = [line.split("{")[0].split(" ")[0] for line in scraped(restarted).splitlines() if not line.startswith("#")]
        families = [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]
        assert len(families) == len(set(families)), names

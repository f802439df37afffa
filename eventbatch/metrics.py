"""Prometheus metrics of a running pipeline, in every cluster mode.

Where it sits: ``eventbatch serve`` (``--cluster sim``, ``none`` and ``kube``)
builds one ``Metrics`` for its pipeline and serves its registry on
``/metrics`` (``eventbatch.kube.probes.ProbeServer``, through
``prometheus_client``'s exposition). Almost everything is computed at scrape
time from what the pipeline already keeps: the log's stats, each handler
runner's position and stats, the scheduler's cluster state (queues rendered
through the read models' ``queue_row``, so ``queue_allocated_*`` and
``queue_share`` are what ``queue get`` shows) and the snapshot store's
positions. Three things are observed as they happen, at the cost of a
``perf_counter`` pair and a histogram bucket: each append to the log
(``instrument`` puts a timing wrapper under the pipeline's fenced log), and
each scheduling session, its open and each of its actions (the scheduler
runner's handler is wrapped by ``TimedScheduler``, which the session tells
each step as it ends: ``handlers.scheduler.handler.run_session``'s ``on_step``). Nothing
here runs in a handler or a fold: the timings never reach the log.

Volcano's metrics keep Volcano's names (``volcano_...``,
``pkg/scheduler/metrics``); the log's own are ``eventbatch_...``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from eventbatch.log.port import EventLog
from eventbatch.log.wrapper import LogWrapper
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from eventbatch.app import Pipeline

Sample = tuple[str, dict[str, str], float]  # (metric name, labels, value): what a component adds
CPU, MEMORY = "cpu", "memory"


def _exponential_range(low: float, high: float, count: int) -> list[float]:
    """prometheus' ``ExponentialBucketsRange`` (Volcano's buckets)."""
    factor = (high / low) ** (1 / (count - 1))
    return [low * factor**i for i in range(count)]


class Metrics:
    """The registry ``/metrics`` serves, for the pipeline ``pipeline()`` returns (None before
    it is built: a standby, a replica campaigning for the Lease)."""

    def __init__(
        self,
        pipeline: Callable[[], Pipeline | None],
        *,
        extra: Callable[[], list[Sample]] = list,
    ) -> None:
        self.pipeline = pipeline
        self.extra = extra
        self.registry = CollectorRegistry(auto_describe=False)
        self.append_seconds = Histogram(
            "eventbatch_log_append_duration_seconds",
            "Time one append (one batch) to the log took, until the backend acknowledged it",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.e2e = Histogram(
            "volcano_e2e_scheduling_latency_milliseconds",
            "Duration of a single scheduling session in milliseconds, from session open through the actions to close",
            buckets=_exponential_range(1, 5000, 20),
            registry=self.registry,
        )
        self.open_session = Histogram(
            "volcano_open_session_duration_milliseconds",
            "Duration of opening a scheduling session in milliseconds (snapshot and plugins' open)",
            buckets=_exponential_range(1, 5000, 20),
            registry=self.registry,
        )
        self.action = Histogram(
            "volcano_action_scheduling_latency_milliseconds",
            "Action scheduling latency in milliseconds",
            ["action"],
            buckets=_exponential_range(1, 2000, 20),
            registry=self.registry,
        )
        self.attempts = Counter(
            "volcano_schedule_attempts",
            "Number of attempts to schedule pods, by the result ('scheduled': bound by a session; "
            "'unschedulable': a pending pod of a podgroup a session found unschedulable)",
            ["result"],
            registry=self.registry,
        )
        for result in ("scheduled", "unschedulable", "error"):
            self.attempts.labels(result)
        self.registry.register(_PipelineCollector(self))
        self._end: int | None = None
        self._snapshots: dict[str, int] = {}

    def instrument(self, pipeline: Pipeline) -> None:
        """Time appends to ``pipeline``'s log and the scheduler's sessions (call before it runs)."""
        inner = getattr(pipeline.log, "inner", None)
        if isinstance(pipeline.log, LogWrapper) and inner is not None and not isinstance(inner, _TimedAppends):
            pipeline.log.inner = _TimedAppends(inner, self.append_seconds)
        for runner in pipeline.runners:
            if runner.name == "scheduler" and not isinstance(runner.handler, TimedScheduler):
                runner.handler = TimedScheduler(runner.handler, self)

    async def refresh(self) -> None:
        """Read what a scrape needs from storage (the log's end, the snapshots' positions)."""
        pipeline = self.pipeline()
        if pipeline is None:
            return
        self._end = await pipeline.log.end_position()
        self._snapshots = await pipeline.snapshots.positions() if pipeline.snapshots is not None else {}


class _TimedAppends(LogWrapper):
    """The backend under the pipeline's fenced log, each append timed."""

    def __init__(self, inner: EventLog, histogram: Histogram) -> None:
        super().__init__(inner)
        self._histogram = histogram

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        started = time.perf_counter()
        try:
            return await self.inner.append(batch)
        finally:
            self._histogram.observe(time.perf_counter() - started)


class TimedScheduler:
    """The scheduler handler with its sessions timed: same name, state, folds and decisions.

    The handler's session tells each of its steps as it ends (``run_session``'s
    ``on_step``: open, each action, close); this reads the clock at each, and
    counts the attempts from the decisions. Every other event goes to the
    handler unchanged.
    """

    def __init__(self, handler: Any, metrics: Metrics) -> None:
        self.handler = handler
        self.name = handler.name
        self.metrics = metrics
        self._started = self._step = 0.0
        handler.on_step = self._on_step

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handler, name)

    def initial(self) -> Any:
        return self.handler.initial()

    def fold(self, state: Any, envelope: Envelope) -> Any:
        return self.handler.fold(state, envelope)

    def _on_step(self, step: str) -> None:
        now, metrics = time.perf_counter(), self.metrics
        if step == "open":
            metrics.open_session.observe((now - self._started) * 1000)
        elif step == "close":
            metrics.e2e.observe((now - self._started) * 1000)
        else:
            metrics.action.labels(step).observe((now - self._step) * 1000)
        self._step = now

    def decide(self, state: Any, envelope: Envelope) -> list:
        from schemas.events import PodBound, PodGroupUnschedulable, SchedulingRequested

        if not isinstance(envelope.payload, SchedulingRequested):
            return self.handler.decide(state, envelope)
        metrics = self.metrics
        self._started = time.perf_counter()
        try:
            events = self.handler.decide(state, envelope)
        except Exception:
            metrics.attempts.labels("error").inc()
            raise
        bound = sum(1 for e in events if type(e) is PodBound)
        if bound:
            metrics.attempts.labels("scheduled").inc(bound)
        waiting = 0
        for e in events:
            if type(e) is PodGroupUnschedulable:
                waiting += _pending_pods(state, e.podgroup)
        if waiting:
            metrics.attempts.labels("unschedulable").inc(waiting)
        return events


def _pending_pods(state: Any, podgroup: str) -> int:
    pods = state.pods
    return sum(1 for name in state.pods_by_group.get(podgroup, ()) if name in pods and pods[name].status == "Pending")


class _PipelineCollector(Collector):
    """Everything computed at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self.metrics
        pipeline = metrics.pipeline()
        extra = metrics.extra()
        if pipeline is not None:
            yield from _log_families(pipeline, metrics._end)
            yield from _runner_families(pipeline, metrics._end)
            yield from _snapshot_families(metrics._snapshots, metrics._end)
            scheduler = next((r for r in pipeline.runners if r.name == "scheduler"), None)
            if scheduler is not None:
                yield from _queue_families(scheduler.state)
                yield from _unschedulable_families(scheduler.state)
        yield from _sample_families(extra)


def _log_families(pipeline: Pipeline, end: int | None) -> Iterable[Metric]:
    stats = pipeline.log.stats
    yield CounterMetricFamily("eventbatch_log_appended", "Records this process appended to the log", value=stats.appended)
    yield CounterMetricFamily("eventbatch_log_records_read", "Records this process read and decoded", value=stats.read)
    yield CounterMetricFamily(
        "eventbatch_log_records_quarantined",
        "Records read that could not be decoded (quarantined; reading went on)",
        value=stats.quarantined,
    )
    yield CounterMetricFamily(
        "eventbatch_log_records_unknown", "Records of an event type this build does not know (skipped)", value=stats.unknown
    )
    if end is not None:
        yield GaugeMetricFamily("eventbatch_log_end_position", "The log's next position (its end)", value=end)


def _runner_families(pipeline: Pipeline, end: int | None) -> Iterable[Metric]:
    runners = pipeline.runners
    decisions = CounterMetricFamily("eventbatch_handler_decisions", "Decisions a handler appended", labels=["handler"])
    position = GaugeMetricFamily("eventbatch_handler_position", "The next log position a handler reads", labels=["handler"])
    lag = GaugeMetricFamily(
        "eventbatch_handler_lag_records", "Records a handler has still to read: the log's end minus its position",
        labels=["handler"],
    )
    failures = CounterMetricFamily(
        "eventbatch_handler_failures",
        "A handler's decide dead-lettered as HandlerFailed (step=decide) or fold skipped (step=fold)",
        labels=["handler", "step"],
    )
    duplicates = CounterMetricFamily(
        "eventbatch_handler_duplicates_ignored", "Answers found twice on the log, folded once", labels=["handler"]
    )
    for runner in runners:
        decisions.add_metric([runner.name], runner.stats.decisions_appended)
        position.add_metric([runner.name], runner.next_position)
        if end is not None:
            lag.add_metric([runner.name], max(0, end - runner.next_position))
        failures.add_metric([runner.name, "decide"], runner.stats.handler_failures)
        failures.add_metric([runner.name, "fold"], runner.stats.fold_failures)
        duplicates.add_metric([runner.name], runner.stats.duplicates_ignored)
    reactors = CounterMetricFamily(
        "eventbatch_reactor_appended", "Records a reactor (timers, cluster adapter) appended", labels=["reactor"]
    )
    for reactor in (pipeline.timers, *pipeline.reactors):
        reactors.add_metric([reactor.name], reactor.appended)
    yield from (decisions, position, lag, failures, duplicates, reactors)


def _snapshot_families(positions: dict[str, int], end: int | None) -> Iterable[Metric]:
    if end is None or not positions:
        return
    age = GaugeMetricFamily(
        "eventbatch_snapshot_age_records",
        "Records on the log after a component's latest snapshot (what a restart would read again)",
        labels=["component"],
    )
    for name in sorted(positions):
        age.add_metric([name], max(0, end - positions[name]))
    yield age


def _queue_families(state: Any) -> Iterable[Metric]:
    from projections.views.render import Aggregates, share

    agg = Aggregates.of(state.podgroups, state.pods)
    names = sorted(state.queues)
    family: dict[str, GaugeMetricFamily] = {}

    def gauge(name: str, help_text: str, labels: Sequence[str] = ("queue_name",)) -> GaugeMetricFamily:
        if name not in family:
            family[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
        return family[name]

    for kind, what in (("allocated", "Allocated"), ("deserved", "Deserved"), ("capacity", "Capacity")):
        gauge(f"volcano_queue_{kind}_milli_cpu", f"{what} CPU count for one queue")
        gauge(f"volcano_queue_{kind}_memory_bytes", f"{what} memory for one queue")
        gauge(f"volcano_queue_{kind}_scalar_resources", f"{what} scalar resources for one queue", ("queue_name", "resource"))
    gauge("volcano_queue_share", "Share for one queue: max over resources of allocated / deserved")
    gauge("volcano_queue_weight", "Weight for one queue")
    for phase in ("pending", "inqueue", "running"):
        gauge(f"volcano_queue_pod_group_{phase}_count", f"The number of {phase} PodGroups in this queue")
    for name in names:
        queue = state.queues[name]
        allocated = agg.allocated.get(name, {})
        for kind, amounts in (("allocated", allocated), ("deserved", queue.deserved), ("capacity", queue.capability)):
            family[f"volcano_queue_{kind}_milli_cpu"].add_metric([name], amounts.get(CPU, 0))
            family[f"volcano_queue_{kind}_memory_bytes"].add_metric([name], amounts.get(MEMORY, 0))
            for resource in sorted(amounts):
                if resource not in (CPU, MEMORY, "pods"):
                    family[f"volcano_queue_{kind}_scalar_resources"].add_metric([name, resource], amounts[resource])
        family["volcano_queue_share"].add_metric([name], share(allocated, queue.deserved))
        family["volcano_queue_weight"].add_metric([name], queue.weight)
        counts = agg.podgroups.get(name, {})
        for phase in ("Pending", "Inqueue", "Running"):
            family[f"volcano_queue_pod_group_{phase.lower()}_count"].add_metric([name], counts.get(phase, 0))
    yield from family.values()


def _unschedulable_families(state: Any) -> Iterable[Metric]:
    tasks = GaugeMetricFamily(
        "volcano_unschedule_task_count",
        "Pending pods of a podgroup the latest session found unschedulable",
        labels=["job_id"],
    )
    jobs = 0
    for name in sorted(state.podgroups):
        group = state.podgroups[name]
        if group.unschedulable is None:
            continue
        waiting = _pending_pods(state, name)
        if waiting:
            jobs += 1
            tasks.add_metric([group.job or name], waiting)
    yield tasks
    yield GaugeMetricFamily("volcano_unschedule_job_count", "Podgroups with unschedulable pending pods", value=jobs)


def _sample_families(samples: list[Sample]) -> Iterable[Metric]:
    """A component's ``(name, labels, value)`` samples as families (``*_total``: a counter)."""
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
    for name, labels, value in samples:
        family = families.get(name)
        if family is None:
            if name.endswith("_total"):
                family = CounterMetricFamily(name[: -len("_total")], name, labels=sorted(labels))
            else:
                family = GaugeMetricFamily(name, name, labels=sorted(labels))
            families[name] = family
        family.add_metric([labels[k] for k in sorted(labels)], value)
    yield from families.values()

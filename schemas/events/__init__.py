"""The catalogue of event types, and the registry that decodes them by tag.

Where it sits: every module in this package defines one area's events
(jobs, CronJobs, HyperNodes, JobFlows and JobTemplates, operators' podgroups and pods, pods, nodes, priority classes, queues,
scheduler decisions, timers) and lists them in
``EVENTS``; this module joins them into ``REGISTRY`` (tag -> type) and
``AnyEvent`` (the tagged union). Import event types from here.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any

import msgspec

from schemas.events import (
    cronjob,
    hypernode,
    job,
    jobflow,
    node,
    pod,
    podgroup,
    priority,
    queue,
    runtime,
    scheduler,
    timer,
)
from schemas.events.base import Event
from schemas.events.cronjob import *  # noqa: F403
from schemas.events.hypernode import *  # noqa: F403
from schemas.events.job import *  # noqa: F403
from schemas.events.jobflow import *  # noqa: F403
from schemas.events.node import *  # noqa: F403
from schemas.events.pod import *  # noqa: F403
from schemas.events.podgroup import *  # noqa: F403
from schemas.events.priority import *  # noqa: F403
from schemas.events.queue import *  # noqa: F403
from schemas.events.runtime import *  # noqa: F403
from schemas.events.runtimeclass import *  # noqa: F403
from schemas.events.runtimeclass import EVENTS as RUNTIME_CLASS_EVENTS
from schemas.events.scheduler import *  # noqa: F403
from schemas.events.timer import *  # noqa: F403

ALL_EVENTS: tuple[type[Event], ...] = (
    job.EVENTS
    + cronjob.EVENTS
    + jobflow.EVENTS
    + pod.EVENTS
    + podgroup.EVENTS
    + node.EVENTS
    + hypernode.EVENTS
    + priority.EVENTS
    + queue.EVENTS
    + scheduler.EVENTS
    + timer.EVENTS
    + runtime.EVENTS
    + RUNTIME_CLASS_EVENTS
)
REGISTRY: dict[str, type[Event]] = {cls.__name__: cls for cls in ALL_EVENTS}
if len(REGISTRY) != len(ALL_EVENTS):  # pragma: no cover - a programming error
    raise RuntimeError("two event types share a tag")

# Built from the list, so a new event type joins it by being listed: a value for
# msgspec (decoding a payload by its tag, the JSON Schema), not an annotation;
# code that reads a payload takes it as ``Event`` and matches its class.
AnyEvent = reduce(or_, ALL_EVENTS)

# Tags of requests: answered by the handler that owns the object, never folded.
REQUESTS: frozenset[str] = frozenset(tag for tag, cls in REGISTRY.items() if cls.REQUEST)

# Records of log format 1 (eventbatch 0.1), where requests carried these
# names and were folded as if they were facts. Their meaning cannot be carried
# over (a refused request changed state), so a reader refuses such a log
# instead of misreading it: (tag, version) -> the request's name today.
FORMAT_1: dict[tuple[str, int], str] = {
    ("JobSubmitRequested", 1): "JobSubmitRequested",
    ("JobUpdated", 1): "JobUpdateRequested",
    ("JobCommandRequested", 1): "JobCommandRequested",
    ("QueueCreated", 1): "QueueCreateRequested",
    ("QueueUpdated", 1): "QueueUpdateRequested",
    ("QueueCommandRequested", 1): "QueueCommandRequested",
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every event, as ``eventbatch schema events`` prints it."""
    (_, components) = msgspec.json.schema_components([AnyEvent])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "eventbatch events",
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in REGISTRY],
        "$defs": components,
    }

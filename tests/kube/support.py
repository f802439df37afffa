"""Helpers of the kube tests: manifests, running a reactor in the background, reading the log.

Where it sits: shared by the watch adapter, actuator, status and end-to-end
tests. ``running`` starts a component's ``run()`` as a task and cancels it
(and waits for it) on exit, so no test leaves a task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from eventbatch.kube.crds import GROUPS
from eventbatch.log.port import EventLog
from schemas.envelope import Envelope


@contextlib.asynccontextmanager
async def running(*components: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c.run(), name=f"test:{getattr(c, 'name', type(c).__name__)}") for c in components]
    try:
        yield
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def envelopes(log: EventLog) -> list[Envelope]:
    end = await log.end_position()
    out: list[Envelope] = []
    if end == 0:
        return out
    async for envelope in log.read(0):
        out.append(envelope)
        if envelope.position + 1 >= end:
            break
    return out


async def types(log: EventLog, *, key: str | None = None) -> list[str]:
    return [e.type for e in await envelopes(log) if key is None or e.key == key]


def api_version(kind: str) -> str:
    group, version = GROUPS[kind]
    return f"{group}/{version}"


def job_manifest(name: str = "demo", *, replicas: int = 2, duration: str = "1s", queue: str = "q1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version("Job"),
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "minAvailable": replicas,
            "schedulerName": "volcano",
            "queue": queue,
            "tasks": [
                {
                    "name": "worker",
                    "replicas": replicas,
                    "template": {
                        "metadata": {"annotations": {"eventbatch.io/sim-duration": duration}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": 1, "memory": "1Gi"}}}
                            ],
                        },
                    },
                }
            ],
            **spec,
        },
    }


def queue_manifest(name: str = "q1", weight: int = 1) -> dict[str, Any]:
    return {"apiVersion": api_version("Queue"), "kind": "Queue", "metadata": {"name": name}, "spec": {"weight": weight}}


def node_manifest(name: str, *, cpu: str = "8", memory: str = "32Gi", heartbeat: str = "t0") -> dict[str, Any]:
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": heartbeat}],
        },
    }


async def idle(reactor: Any) -> bool:
    """The reactor has folded the whole log and has nothing left to do."""
    end = await reactor.log.end_position()
    pending = getattr(reactor, "pending", None) or getattr(reactor, "dirty", None)
    return reactor.next_position >= end and not pending


def granted(rbac_file) -> set[tuple[str, str, str]]:
    """``(apiGroup, resource, verb)`` granted by the ClusterRoles and Roles of an RBAC file."""
    import yaml

    out = set()
    for doc in yaml.safe_load_all(rbac_file.read_text()):
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            out.add((group, resource, verb))
    return out

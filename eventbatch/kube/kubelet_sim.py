"""``eventbatch kubelet-sim``: a KWOK-like kubelet for any API server.

Where it sits: outside the pipeline, standing in for the kubelets of a
cluster with no real nodes (tests, demos, load runs). It watches bound pods
and moves them as the simulated cluster does (``eventbatch.sim.kubelet``),
by writing their status through the API: ``Running`` and Ready after the
startup latency, then ``Succeeded`` or ``Failed`` with the container's exit
code once the annotation ``eventbatch.io/sim-duration`` has elapsed since
``status.startTime`` (exit code from ``eventbatch.io/sim-exit-code``, default
0; without a duration a pod runs until deleted). A pod being deleted is
removed at once (grace period 0), as a kubelet does once its containers
stopped. Everything it does is derived from the pod object, so a restarted
kubelet-sim picks up where the last one was.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import MERGE, Kube
from eventbatch.kube.informer import Informer
from eventbatch.sim.kubelet import pod_runtime

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


@dataclass
class SimStats:
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    removed: int = 0


@dataclass
class KubeletSim:
    kube: Kube
    startup_s: float = 1.0
    watch_timeout_s: int = 300
    stats: SimStats = field(default_factory=SimStats)
    _tasks: dict[str, asyncio.Task] = field(default_factory=dict)

    async def run(self) -> None:
        informer = Informer(
            kube=self.kube,
            name="pods",
            list_call=self.kube.core.list_pod_for_all_namespaces,
            kwargs={"field_selector": "spec.nodeName!="},
            on_snapshot=self._plan_all,
            on_change=self._changed,
            watch_timeout_s=self.watch_timeout_s,
        )
        try:
            await informer.run()
        finally:
            for task in self._tasks.values():
                task.cancel()

    def _plan_all(self, items: list[Obj]) -> None:
        for obj in items:
            self._plan(obj)

    def _changed(self, kind: str, obj: Obj) -> None:
        if kind != "DELETED":
            self._plan(obj)

    def _plan(self, obj: Obj) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        if (previous := self._tasks.pop(key, None)) is not None:
            previous.cancel()
        task = asyncio.create_task(self._drive(obj), name=f"kubelet-sim:{key}")
        self._tasks[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(key) is done:
                del self._tasks[key]

        task.add_done_callback(forget)

    async def _drive(self, obj: Obj) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        name, namespace = meta["name"], meta["namespace"]
        try:
            if meta.get("deletionTimestamp"):
                await self.kube.call(
                    self.kube.core.delete_namespaced_pod,
                    name,
                    namespace,
                    body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                )
                self.stats.removed += 1
                return
            phase = status.get("phase") or "Pending"
            if phase == "Pending" and spec.get("nodeName"):
                await asyncio.sleep(self.startup_s)
                await self._patch(name, namespace, self._running(obj))
                self.stats.started += 1
                return
            if phase == "Running":
                duration_ms, exit_code = pod_runtime(meta.get("annotations") or {})
                if duration_ms is None:
                    return
                started = _parse(status["startTime"]) if status.get("startTime") else _now()
                wait = (started + datetime.timedelta(milliseconds=duration_ms) - _now()).total_seconds()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._patch(name, namespace, self._finished(obj, exit_code))
                if exit_code == 0:
                    self.stats.succeeded += 1
                else:
                    self.stats.failed += 1
        except asyncio.CancelledError:
            raise
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("kubelet-sim could not update a pod", extra={"pod": f"{namespace}/{name}", "status": exc.status})

    async def _patch(self, name: str, namespace: str, status: Obj) -> None:
        await self.kube.call(
            self.kube.core.patch_namespaced_pod_status, name, namespace, {"status": status}, _content_type=MERGE
        )

    @staticmethod
    def _conditions(ready: bool, now: str) -> list[Obj]:
        flag = "True" if ready else "False"
        return [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ]

    def _running(self, obj: Obj) -> Obj:
        now = _stamp(_now())
        containers = (obj.get("spec") or {}).get("containers") or [{"name": "main"}]
        return {
            "phase": "Running",
            "startTime": now,
            "hostIP": "10.0.0.1",
            "podIP": "10.1.0.1",
            "conditions": self._conditions(True, now),
            "containerStatuses": [
                {
                    "name": c.get("name", "main"),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
            ],
        }

    def _finished(self, obj: Obj, exit_code: int) -> Obj:
        now = _stamp(_now())
        status = obj.get("status") or {}
        reason = "Completed" if exit_code == 0 else "Error"
        return {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": self._conditions(False, now),
            "containerStatuses": [
                {
                    **c,
                    "ready": False,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": reason,
                            "startedAt": (c.get("state") or {}).get("running", {}).get("startedAt", now),
                            "finishedAt": now,
                        }
                    },
                }
                for c in status.get("containerStatuses") or [{"name": "main", "restartCount": 0}]
            ],
        }

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

``status.startTime`` has whole seconds only, so the run time is measured
from the moment this kubelet-sim marked the pod Running, kept in memory; a
restarted kubelet-sim, which never saw that moment, measures from the stored
second (the pod then ends up to one second early, never late).

Writes go through ``Kube.call``, which retries transient failures (5xx, 429,
timeouts, lost connections) with backoff. A 409 Conflict means the pod moved
under the write: it is read again and the step is redone from the fresh
object (a different pod of the same name, or none, ends the work). Anything
else it cannot handle, a transient failure that outlasted the retries
included, is logged as an error with its traceback and counted in
``stats.errors``, rather than dropped with the pod left where it was.
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
    conflicts: int = 0  # 409s answered by reading the pod again
    errors: int = 0  # pods left where they were, each logged as an error


@dataclass
class KubeletSim:
    kube: Kube
    startup_s: float = 1.0
    watch_timeout_s: int = 300
    conflict_retries: int = 5  # reads again after a 409 before giving up, as client-go's RetryOnConflict
    stats: SimStats = field(default_factory=SimStats)
    _tasks: dict[str, asyncio.Task] = field(default_factory=dict)
    # uid -> when this kubelet-sim marked the pod Running, finer than status.startTime's seconds
    _started_at: dict[str, datetime.datetime] = field(default_factory=dict)

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
        else:
            self._started_at.pop(obj["metadata"].get("uid", ""), None)

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
            if not done.cancelled():
                done.exception()  # logged and counted by _drive already

        task.add_done_callback(forget)

    async def _drive(self, obj: Obj) -> None:
        """Move one pod on; after a 409, read it again and redo the step; surface what cannot be handled."""
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta["namespace"], meta.get("uid")
        conflicts = 0
        try:
            while True:
                try:
                    await self._step(obj)
                    return
                except ApiException as exc:
                    if exc.status == 404:
                        return  # the pod is gone: nothing left to move
                    if exc.status != 409 or conflicts >= self.conflict_retries:
                        raise
                conflicts += 1
                self.stats.conflicts += 1
                log.info(
                    "kubelet-sim met a conflict, reading the pod again",
                    extra={"pod": f"{namespace}/{name}", "attempt": conflicts},
                )
                try:
                    obj = await self.kube.call(self.kube.core.read_namespaced_pod, name, namespace)
                except ApiException as exc:
                    if exc.status == 404:
                        return
                    raise
                if obj["metadata"].get("uid") != uid:
                    return  # a new pod of the same name: its own watch event plans it
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("kubelet-sim could not move a pod", extra={"pod": f"{namespace}/{name}"})
            raise

    async def _step(self, obj: Obj) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        name, namespace, uid = meta["name"], meta["namespace"], meta.get("uid", "")
        if meta.get("deletionTimestamp"):
            await self.kube.call(
                self.kube.core.delete_namespaced_pod,
                name,
                namespace,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
            )
            self._started_at.pop(uid, None)
            self.stats.removed += 1
            return
        phase = status.get("phase") or "Pending"
        if phase == "Pending" and spec.get("nodeName"):
            await asyncio.sleep(self.startup_s)
            moment = _now()
            # kept before the write: the watch event of the write may replan the pod before it returns
            self._started_at[uid] = moment
            await self._patch(name, namespace, self._running(obj, moment))
            self.stats.started += 1
            return
        if phase == "Running":
            duration_ms, exit_code = pod_runtime(meta.get("annotations") or {})
            if duration_ms is None:
                return
            started = self._start_of(uid, status.get("startTime"))
            wait = (started + datetime.timedelta(milliseconds=duration_ms) - _now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._patch(name, namespace, self._finished(obj, exit_code))
            self._started_at.pop(uid, None)
            if exit_code == 0:
                self.stats.succeeded += 1
            else:
                self.stats.failed += 1

    def _start_of(self, uid: str, stamp: str | None) -> datetime.datetime:
        """When the pod started: this kubelet-sim's own moment if the stored second is the one it wrote."""
        mine = self._started_at.get(uid)
        if stamp is None:
            return mine or _now()
        if mine is not None and _stamp(mine) == stamp:
            return mine
        return _parse(stamp)

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

    def _running(self, obj: Obj, moment: datetime.datetime) -> Obj:
        now = _stamp(moment)
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

"""The watch adapter reads node.k8s.io/v1 RuntimeClasses: each change on the log once.

A RuntimeClass created in the API server becomes ``RuntimeClassAdded`` with
its overhead and scheduling parsed; a change to it is appended again, a
delete is ``RuntimeClassRemoved``; a restarted adapter on the same log
appends nothing it already said; a class the adapter cannot read (an
overhead that is no quantity) never reaches the log.
"""

from __future__ import annotations

from eventbatch.clock import SystemClock
from eventbatch.kube.client import MERGE, Connection, Kube
from eventbatch.kube.observe import KubeObserver
from eventbatch.log.memory import MemoryLog
from tests.kube.conftest import eventually
from tests.kube.support import envelopes, running

KATA = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "kata"},
    "handler": "kata",
    "overhead": {"podFixed": {"cpu": "250m", "memory": "120Mi"}},
    "scheduling": {"nodeSelector": {"runtime": "kata"}, "tolerations": [{"key": "kata", "operator": "Exists"}]},
}


def observer(log: MemoryLog, connection: Connection) -> KubeObserver:
    return KubeObserver(log=log, clock=SystemClock(), connection=connection, watch_timeout_s=2)


async def classes(log: MemoryLog) -> list[tuple[str, str, dict[str, int]]]:
    return [
        (e.type, e.payload.name, dict(getattr(e.payload, "overhead", {})))
        for e in await envelopes(log)
        if e.type.startswith("RuntimeClass")
    ]


async def test_runtime_classes_are_appended_once_per_change(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    await kube.call(kube.node.create_runtime_class, KATA)
    bad = {**KATA, "metadata": {"name": "broken"}, "overhead": {"podFixed": {"cpu": "lots"}}}
    await kube.call(kube.node.create_runtime_class, bad)
    async with running(observer(log, connection)):
        await eventually(lambda: _count(log, 1), what="the class on the log")
    (added,) = [e.payload for e in await envelopes(log) if e.type == "RuntimeClassAdded"]
    assert added.name == "kata" and added.handler == "kata"
    assert added.overhead == {"cpu": 250, "memory": 120 * 1024 * 1024}
    assert added.node_selector == {"runtime": "kata"} and [t.key for t in added.tolerations] == ["kata"]
    # a restarted adapter on the same log: only what is new
    await kube.call(kube.node.create_runtime_class, {**KATA, "metadata": {"name": "gvisor"}, "handler": "runsc"})
    again = observer(log, connection)
    async with running(again):
        await eventually(lambda: _count(log, 2), what="the new class")
        await eventually(lambda: _idle(again), what="the adapter idle")
        await kube.call(
            kube.node.patch_runtime_class, "kata", {"overhead": {"podFixed": {"cpu": "500m"}}}, _content_type=MERGE
        )
        await eventually(lambda: _count(log, 3), what="the change")
        await kube.call(kube.node.delete_runtime_class, "kata")
        await eventually(lambda: _count(log, 4), what="the delete")
        await eventually(lambda: _idle(again), what="the adapter idle")
    memory = 120 * 1024 * 1024
    assert await classes(log) == [
        ("RuntimeClassAdded", "kata", {"cpu": 250, "memory": memory}),
        ("RuntimeClassAdded", "gvisor", {"cpu": 250, "memory": memory}),
        ("RuntimeClassAdded", "kata", {"cpu": 500, "memory": memory}),  # a merge patch keeps the memory
        ("RuntimeClassRemoved", "kata", {}),
    ]


async def _idle(watcher: KubeObserver) -> bool:
    return watcher.next_position >= await watcher.log.end_position() and not watcher.dirty and watcher._is_synced("runtimeclasses")


async def _count(log: MemoryLog, n: int) -> bool:
    return len(await classes(log)) >= n

"""The JobFlow watch: JobTemplates and JobFlows in the API server become requests, each once,
and the JobFlow controller's answer comes back as the JobFlow's status.

The watch (``eventbatch.kube.flows``) and the real JobFlow controller
(``handlers.jobflow``, in a ``HandlerRunner``) run on one log against the
API-server fake holding the CRDs of Volcano's groups. No job controller runs
here: the steps' Jobs are submitted but never created, which is enough to see
what the watch appends and what it writes (tests/kube/test_jobflow_e2e.py runs
the whole flow).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from eventbatch.clock import SystemClock
from eventbatch.kube.client import MERGE, Connection, Kube
from eventbatch.kube.crds import GROUPS, groups
from eventbatch.kube.flows import FlowWatch
from eventbatch.log.memory import MemoryLog
from eventbatch.runtime import HandlerRunner
from handlers.jobflow import JobFlowHandler
from schemas.jobflow import step_job
from schemas.loaders import decode_manifest
from schemas.resources import JobFlow, JobTemplate
from tests.kube.conftest import eventually
from tests.kube.support import envelopes, job_manifest, running, types

FLOW = GROUPS["JobFlow"]
TEMPLATE = GROUPS["JobTemplate"]


def template(name: str) -> dict[str, Any]:
    return {"apiVersion": "/".join(TEMPLATE), "kind": "JobTemplate", "metadata": {"name": name, "namespace": "default"},
            "spec": job_manifest(name)["spec"]}


def jobflow(name: str = "flow", **targets: list[str]) -> dict[str, Any]:
    flows = [{"name": step, **({"dependsOn": {"targets": after}} if after else {})} for step, after in targets.items()]
    return {"apiVersion": "/".join(FLOW), "kind": "JobFlow", "metadata": {"name": name, "namespace": "default"},
            "spec": {"flows": flows}}


THREE_STEPS = {"a": [], "b": ["a"], "c": ["a", "b"]}


async def create(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    plural = "jobflows" if obj["kind"] == "JobFlow" else "jobtemplates"
    group = FLOW if obj["kind"] == "JobFlow" else TEMPLATE
    return await kube.call(kube.custom.create_namespaced_custom_object, *group, "default", plural, obj)


@contextlib.asynccontextmanager
async def watching(log: MemoryLog, connection: Connection) -> AsyncIterator[FlowWatch]:
    watch = FlowWatch(log=log, clock=SystemClock(), connection=connection, watch_timeout_s=2, min_interval_ms=0)
    async with running(watch, HandlerRunner(handler=JobFlowHandler(), log=log)):
        yield watch


async def settled(watch: FlowWatch) -> None:
    """The watch has listed both kinds, folded the whole log and has nothing left to append or write."""

    async def idle() -> bool:
        end = await watch.log.end_position()
        synced = {"jobtemplates", "jobflows"} <= watch.synced
        return synced and watch.next_position >= end and not watch.dirty and not watch.status_dirty

    await eventually(idle, what="the watch to settle")


async def flow_status(kube: Kube, name: str = "flow") -> dict[str, Any]:
    obj = await kube.call(kube.custom.get_namespaced_custom_object, *FLOW, "default", "jobflows", name)
    return obj.get("status") or {}


async def test_templates_then_the_jobflow_are_submitted_once_and_its_status_is_written(
    crds: Kube, connection: Connection
) -> None:
    kube, log = crds, MemoryLog()
    flow = await create(kube, jobflow(**THREE_STEPS))  # before its templates: it waits for them
    for name in ("a", "b", "c"):
        await create(kube, template(name))
    async with watching(log, connection) as watch:
        await eventually(lambda: _logged(log, "JobFlowStepSubmitted"), what="the first step")
        await settled(watch)
        status = await flow_status(kube)
    seen = await types(log)
    requests = [t for t in seen if t.endswith("SubmitRequested")]
    assert requests == ["JobTemplateSubmitRequested"] * 3 + ["JobFlowSubmitRequested", "JobSubmitRequested"]
    assert "JobFlowRefused" not in seen
    submitted = next(e for e in await envelopes(log) if e.type == "JobFlowSubmitRequested")
    assert submitted.payload.manifest.metadata.uid == flow["metadata"]["uid"]
    steps = [e.payload for e in await envelopes(log) if e.type == "JobSubmitRequested"]
    assert [s.job for s in steps] == ["default/flow-a"]  # b and c wait for a's Job
    (owner,) = steps[0].manifest.metadata.owner_references
    assert (owner.api_version, owner.kind, owner.uid) == ("/".join(FLOW), "JobFlow", flow["metadata"]["uid"])
    assert status == {"state": {"phase": "Pending"}}

    # a restart appends nothing: the log already says all of it
    before = len(await envelopes(log))
    async with watching(log, connection) as watch:
        await settled(watch)
    assert len(await envelopes(log)) == before

    # deleted in the API server: deleted on the log
    async with watching(log, connection) as watch:
        await kube.call(kube.custom.delete_namespaced_custom_object, *FLOW, "default", "jobflows", "flow")
        await kube.call(kube.custom.delete_namespaced_custom_object, *TEMPLATE, "default", "jobtemplates", "c")
        await eventually(lambda: _logged(log, "JobFlowDeleted", "JobTemplateDeleted"), what="the deletions")
        await settled(watch)
    after = [(e.type, e.key) for e in (await envelopes(log))[before:]]
    assert sorted(after) == [("JobFlowDeleteRequested", "default/flow"), ("JobFlowDeleted", "default/flow"),
                             ("JobTemplateDeleteRequested", "default/c"), ("JobTemplateDeleted", "default/c")]


async def test_a_jobflow_refused_for_a_missing_template_is_submitted_again_once_it_exists(
    crds: Kube, connection: Connection
) -> None:
    kube, log = crds, MemoryLog()
    await create(kube, jobflow(a=[]))
    async with watching(log, connection) as watch:
        await eventually(lambda: _logged(log, "JobFlowRefused"), what="the refusal")
        (refused,) = [e.payload for e in await envelopes(log) if e.type == "JobFlowRefused"]
        assert "jobtemplate default/a not found" in refused.reason
        await settled(watch)
        await create(kube, template("a"))
        await eventually(lambda: _logged(log, "JobFlowCreated", "JobFlowStepSubmitted"), what="the flow to start")
        await settled(watch)
    assert await types(log) == [
        "JobFlowSubmitRequested", "JobFlowRefused",
        "JobTemplateSubmitRequested", "JobTemplateCreated",
        "JobFlowSubmitRequested", "JobFlowCreated", "JobFlowStepSubmitted", "JobSubmitRequested", "JobFlowPhaseChanged",
    ]
    assert (await flow_status(kube))["state"] == {"phase": "Pending"}


async def test_a_changed_spec_is_refused_and_an_inadmissible_jobflow_is_a_warning_event(
    crds: Kube, connection: Connection
) -> None:
    kube, log = crds, MemoryLog()
    for name in ("a", "b"):
        await create(kube, template(name))
    await create(kube, jobflow(a=[], b=["a"]))
    cycle = jobflow("cycle", a=["b"], b=["a"])
    await create(kube, cycle)
    async with watching(log, connection) as watch:
        await eventually(lambda: _logged(log, "JobFlowCreated"), what="the flow")
        await kube.call(kube.custom.patch_namespaced_custom_object, *FLOW, "default", "jobflows", "flow",
                        {"spec": {"jobRetainPolicy": "delete"}}, _content_type=MERGE)
        await eventually(lambda: _logged(log, "JobFlowRefused"), what="the update's refusal")
        await settled(watch)
    flows = [e for e in await envelopes(log) if e.type.startswith("JobFlow") and e.type.endswith(("Requested", "Refused"))]
    assert [(e.type, e.key) for e in flows] == [
        ("JobFlowSubmitRequested", "default/flow"), ("JobFlowSubmitRequested", "default/flow"), ("JobFlowRefused", "default/flow")
    ]
    assert "cannot change" in flows[-1].payload.reason
    events = (await kube.call(kube.core.list_namespaced_event, "default"))["items"]
    warnings = [(e["involvedObject"]["name"], e["reason"]) for e in events if e["type"] == "Warning"]
    assert warnings == [("cycle", "FailedAdmission")]
    assert "not DAG" in next(e["message"] for e in events if e["involvedObject"]["name"] == "cycle")


async def _logged(log: MemoryLog, *wanted: str) -> bool:
    seen = await types(log)
    return all(w in seen for w in wanted)


def test_a_steps_job_is_owned_by_the_jobflow_in_the_group_it_came_in() -> None:
    """With the project's API groups the owner reference names flow.eventbatch.io, which the API server serves."""
    for api_groups in ("volcano", "eventbatch"):
        version = "/".join(groups(api_groups)["JobFlow"])
        flow = decode_manifest({**jobflow(a=[]), "apiVersion": version}, source="test")
        made = decode_manifest({**template("a"), "apiVersion": version}, source="test")
        assert isinstance(flow, JobFlow) and isinstance(made, JobTemplate)
        (owner,) = step_job(flow, made, "a").metadata.owner_references
        assert (owner.api_version, owner.kind, owner.name) == (version, "JobFlow", "flow")

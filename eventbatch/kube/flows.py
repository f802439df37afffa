"""The kube watch of JobTemplates and JobFlows, and the JobFlow status written back.

Where it sits: the input and status edge of ``--cluster kube`` for the
``flow`` API group (``flow.volcano.sh`` or ``flow.eventbatch.io``:
``Settings.api_groups``), beside the watch adapter (``eventbatch.kube.observe``)
and the status writer (``eventbatch.kube.status``). It lists and watches both
kinds and appends the requests ``eventbatch apply -f`` makes:

- a JobTemplate not on the log, or with a new generation:
  ``JobTemplateSubmitRequested``; one that is gone: ``JobTemplateDeleteRequested``;
- a JobFlow not on the log: ``JobFlowSubmitRequested`` (a new generation is
  submitted too, and the JobFlow controller refuses the changed spec, as
  Volcano's controller ignores it); one that is gone: ``JobFlowDeleteRequested``.

The JobFlow controller (``handlers.jobflow``) answers them; the Jobs of the
steps it submits are created in the API server by the actuator, owned by the
JobFlow. A JobFlow is appended only once every JobTemplate it names that the
API server holds is on the log (informers run side by side, so a JobFlow
created with its templates may be seen first). A JobFlow refused because a
template did not exist is submitted again once the templates it names are
on the log: Volcano's controller retries such a JobFlow until its templates
appear.

Like the watch adapter, it folds the log into what the log already says
(uid and generation of each object) and appends only the difference, so a
relist or a restart appends nothing twice. An object refused by admission is
reported as a Warning Event on it and never appended.

It also folds the JobFlow controller's facts with the controller's own fold
(``handlers.jobflow.handler``) and writes each JobFlow's status
(``handlers.jobflow.handler.status``: the Jobs by phase, ``jobStatusList``,
``state.phase``) to the ``status`` subresource, for JobFlows that came from
the API server. Status is derived, never appended: after a restart it is
written again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import JSON_PATCH, Kube
from eventbatch.kube.informer import Informer
from eventbatch.kube.watch import ApiWatch, uid_of
from handlers.jobflow.handler import FOLDS as FLOW_FOLDS
from handlers.jobflow.handler import JobFlowsState
from handlers.jobflow.handler import status as flow_status
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobFlowCreated,
    JobFlowDeleted,
    JobFlowDeleteRequested,
    JobFlowPhaseChanged,
    JobFlowRefused,
    JobFlowStepSubmitted,
    JobFlowSubmitRequested,
    JobPhaseChanged,
    JobRemoved,
    JobTemplateDeleted,
    JobTemplateDeleteRequested,
    JobTemplateSubmitRequested,
)
from schemas.events.base import Event
from schemas.resources import JobFlow, JobTemplate

log = logging.getLogger(__name__)
Obj = dict[str, Any]
TEMPLATES, FLOWS = "jobtemplates", "jobflows"


@dataclass
class SeenObject:
    """What the log says of a JobTemplate or JobFlow: the object and generation last submitted."""

    uid: str
    generation: int
    alive: bool = True
    created: bool = False  # a JobFlow the controller created
    refused: bool = False  # a JobFlow the controller refused before creating it


class FlowWatch(ApiWatch):
    name = "kube-flows"

    def __init__(
        self,
        *,
        min_interval_ms: int = 200,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_interval_ms = min_interval_ms  # one JobFlow's status is written at most this often
        # what the log says
        self.seen: dict[str, dict[str, SeenObject]] = {TEMPLATES: {}, FLOWS: {}}
        self.flows = JobFlowsState()  # the JobFlow controller's state, folded as it folds it
        # status: JobFlow -> not before (clock ms); what was written last
        self.status_dirty: dict[str, int] = {}
        self.last_write: dict[str, int] = {}
        self.written: dict[str, dict[str, object]] = {}
        self.status_writes = 0

    # -- the log side ---------------------------------------------------------

    def fold(self, envelope: Envelope) -> bool:
        e = envelope.payload
        touched: str | None = None
        if isinstance(e, JobRemoved):
            touched = self.flows.owner.get(e.job, ("", ""))[0] or None
        step = FLOW_FOLDS.get(type(e))
        if step is not None:
            step(self.flows, e, envelope)
        if isinstance(e, JobCreated | JobPhaseChanged):
            touched = self.flows.owner.get(e.job, ("", ""))[0] or None
        elif isinstance(e, JobFlowCreated | JobFlowPhaseChanged | JobFlowStepSubmitted):
            touched = e.jobflow
        elif isinstance(e, JobFlowDeleted):
            self.status_dirty.pop(e.jobflow, None)
            self.written.pop(e.jobflow, None)
        if touched is not None and touched in self.flows.flows and self.flows.flows[touched].manifest.metadata.uid:
            last = self.last_write.get(touched)
            self.status_dirty.setdefault(touched, 0 if last is None else last + self.min_interval_ms)
        changed = self._fold_seen(e)
        return changed or touched is not None

    def _fold_seen(self, e: Event) -> bool:
        templates, flows = self.seen[TEMPLATES], self.seen[FLOWS]
        if isinstance(e, JobTemplateSubmitRequested):
            meta = e.manifest.metadata
            templates[e.template] = SeenObject(meta.uid, meta.generation)
            self.dirty[(TEMPLATES, e.template)] = None
            # JobFlows waiting for this template to be on the log
            namespace = e.template.split("/", 1)[0]
            for key in sorted(self.cache.get(FLOWS, {})):
                if key.split("/", 1)[0] == namespace:
                    self.dirty[(FLOWS, key)] = None
        elif isinstance(e, JobTemplateDeleteRequested | JobTemplateDeleted):
            if (seen := templates.get(e.template)) is not None:
                seen.alive = False
            self.dirty[(TEMPLATES, e.template)] = None
        elif isinstance(e, JobFlowSubmitRequested):
            meta = e.manifest.metadata
            current = flows.get(e.jobflow)
            created = current is not None and current.created and current.uid == meta.uid
            flows[e.jobflow] = SeenObject(meta.uid, meta.generation, created=created)
            self.dirty[(FLOWS, e.jobflow)] = None
        elif isinstance(e, JobFlowCreated):
            if (seen := flows.get(e.jobflow)) is not None:
                seen.created, seen.refused = True, False
        elif isinstance(e, JobFlowRefused):
            if (seen := flows.get(e.jobflow)) is not None and seen.alive and not seen.created:
                seen.refused = True
                self.dirty[(FLOWS, e.jobflow)] = None
        elif isinstance(e, JobFlowDeleteRequested | JobFlowDeleted):
            if (seen := flows.get(e.jobflow)) is not None:
                seen.alive = False
                if isinstance(e, JobFlowDeleted):
                    seen.created = False
            self.dirty[(FLOWS, e.jobflow)] = None
        else:
            return False
        return True

    # -- the API side ---------------------------------------------------------

    def _snapshot(self, kind: str, items: list[Obj], *, namespaced: bool = True) -> None:
        old, new, first = self._relist(kind, items, namespaced=namespaced)
        keys = set(old) | set(new)
        if first:
            keys |= set(self.seen[kind])
        for key in sorted(keys):
            if first or old.get(key) is not new.get(key):
                self.dirty[(kind, key)] = None
        self._changed.set()

    # -- the difference -------------------------------------------------------

    def next_deadline(self) -> int | None:
        if self.dirty:
            return self.clock.now()
        return min(self.status_dirty.values(), default=None)

    def due(self, now: int) -> list[list[Envelope]]:
        batches = []
        for kind, key in list(self.dirty):
            # a JobFlow is read once the templates are listed too: it may name one of them
            if kind not in self.synced or (kind == FLOWS and TEMPLATES not in self.synced):
                continue
            del self.dirty[(kind, key)]
            obj = self.cache.get(kind, {}).get(key)
            events = self._derive_template(key, obj) if kind == TEMPLATES else self._derive_flow(key, obj)
            if events:
                batches.append([Envelope.wrap(e, recorded_at=now) for e in events])
        return batches

    def _derive_template(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.seen[TEMPLATES].get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            if seen is not None and seen.alive and seen.uid:
                return [JobTemplateDeleteRequested(template=key)]
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        if seen is not None and seen.uid == uid and (not seen.alive or generation <= seen.generation):
            return []
        manifest = self._admit(obj)
        if not isinstance(manifest, JobTemplate):
            return []
        gone = seen is not None and seen.alive and seen.uid and seen.uid != uid  # deleted and made again
        replaced = [JobTemplateDeleteRequested(template=key)] if gone else []
        return [*replaced, JobTemplateSubmitRequested(template=key, manifest=manifest)]

    def _derive_flow(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.seen[FLOWS].get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            if seen is not None and seen.alive and seen.uid:
                return [JobFlowDeleteRequested(jobflow=key)]
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        same = seen is not None and seen.uid == uid
        if same and seen is not None:
            if not seen.alive:
                return []
            # refused for a missing template: again once every template it names is on the log
            retry = seen.refused and not seen.created and self._templates_on_log(key, obj, all_of_them=True)
            if generation <= seen.generation and not retry:
                return []
        elif not self._templates_on_log(key, obj, all_of_them=False):
            return []  # a template it names is in the API server, not on the log yet: wait for it
        manifest = self._admit(obj)
        if not isinstance(manifest, JobFlow):
            return []
        replaced = [JobFlowDeleteRequested(jobflow=key)] if seen is not None and seen.alive and seen.uid and not same else []
        return [*replaced, JobFlowSubmitRequested(jobflow=key, manifest=manifest)]

    def _templates_on_log(self, key: str, obj: Obj, *, all_of_them: bool) -> bool:
        """Whether the JobTemplates ``obj`` names are on the log: every one (``all_of_them``),
        or every one the API server holds (one it lacks the controller will name)."""
        namespace = key.split("/", 1)[0]
        templates, api = self.seen[TEMPLATES], self.cache.get(TEMPLATES, {})
        for flow in (obj.get("spec") or {}).get("flows") or []:
            name = f"{namespace}/{(flow or {}).get('name', '')}"
            on_log = (seen := templates.get(name)) is not None and seen.alive
            if not on_log and (all_of_them or name in api):
                return False
        return True

    # -- status -----------------------------------------------------------------

    async def act(self) -> int:
        count = await super().act()
        if self.reports or self.status_dirty:
            kube = await self.connection.get()
            await self._post_reports(kube)
            now = self.clock.now()
            ready = sorted(k for k, at in self.status_dirty.items() if at <= now)
            if ready:
                await asyncio.gather(*(self._write(kube, key) for key in ready))
        return count

    async def _write(self, kube: Kube, key: str) -> None:
        status = flow_status(self.flows, key)
        if status is None or self.written.get(key) == status:
            self.status_dirty.pop(key, None)
            return
        group, version = self.api_groups["JobFlow"]
        namespace, _, name = key.partition("/")
        body = [{"op": "add", "path": "/status", "value": status}]  # replaced whole: no stale list survives
        try:
            await kube.call(
                kube.custom.patch_namespaced_custom_object_status,
                group, version, namespace, FLOWS, name, body,
                _content_type=JSON_PATCH,
            )
        except ApiException as exc:
            # 404: gone (its delete is on its way), or not listed yet: look again later
            self.status_dirty[key] = self.clock.now() + (500 if exc.status == 404 else 1000)
            if exc.status != 404:
                log.warning("jobflow status write failed", extra={"object": key, "error": f"{exc.status} {exc.reason}"})
            return
        if flow_status(self.flows, key) == status:  # nothing changed while writing
            self.status_dirty.pop(key, None)
        self.written[key] = status
        self.last_write[key] = self.clock.now()
        self.status_writes += 1

    # -- running --------------------------------------------------------------

    def make_informers(self, kube: Kube) -> list[Informer]:
        def informer(kind: str, api_kind: str) -> Informer:
            return self._informer(kube, kind, kube.custom.list_cluster_custom_object, *self.api_groups[api_kind], kind)

        return [informer(TEMPLATES, "JobTemplate"), informer(FLOWS, "JobFlow")]

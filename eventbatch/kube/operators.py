"""The kube watch of other operators' PodGroups and plain pods, appended as requests.

Where it sits: the input edge of ``--cluster kube``, beside the watch adapter
(``eventbatch.kube.observe``). Kubeflow's training operator, the Spark
operator, KubeRay and others create a PodGroup of the configured API group
(``scheduling.volcano.sh`` or ``scheduling.eventbatch.io``: ``Settings.api_groups``)
and pods with ``schedulerName: volcano`` (or ``eventbatch``). This reactor
lists and watches both and appends what the log does not know yet:

- a PodGroup not on the log, or whose spec changed (a new generation):
  ``PodGroupSubmitRequested``; one that is gone: ``PodGroupDeleteRequested``.
  PodGroups eventbatch created itself (a Volcano Job's, or the one made for a
  plain pod) are left out: the log has their ``PodGroupCreated`` already, or
  they name a Job of the configured group as owner;
- a pod for this scheduler that eventbatch did not create (no
  ``eventbatch.io/requested-at`` annotation), not bound and not finished:
  ``PodSubmitRequested`` with its uid. The podgroup controller
  (``handlers.podgroup``) decides what becomes of both; once a pod is
  ``PodRequested`` with its uid, the actuator binds it (it creates nothing)
  and the watch adapter reports its transitions as for any pod;
- a pod that went away while it waited for its PodGroup: ``PodDeleted``.

Like the watch adapter, it folds the log into what the log already says and
appends only the difference from the API server's objects, so a relist or a
restart appends nothing twice. An object that fails admission is logged and
left out (until its next generation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from eventbatch.kube.client import Kube
from eventbatch.kube.informer import Informer
from eventbatch.kube.translate import REQUESTED_AT
from eventbatch.kube.watch import ApiWatch, uid_of
from schemas.defaults import SCHEDULER_NAMES
from schemas.envelope import Envelope
from schemas.events import (
    PodDeleted,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupDeleteRequested,
    PodGroupSubmitRequested,
    PodRequested,
    PodSubmitRequested,
)
from schemas.events.base import Event
from schemas.resources import Pod, PodGroup

log = logging.getLogger(__name__)
Obj = dict[str, Any]


@dataclass
class SeenGroup:
    """What the log says of an operator's PodGroup: the object and generation last submitted."""

    uid: str
    generation: int
    alive: bool = True


class OperatorWatch(ApiWatch):
    name = "kube-operators"
    REPORT_REFUSED = False  # an object refused by admission is logged and left out

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # what the log says
        self.groups: dict[str, SeenGroup] = {}  # operators' PodGroups, as submitted
        self.made: set[str] = set()  # PodGroups eventbatch created itself
        self.pods: dict[str, str] = {}  # pod on the log -> its uid ("" for one eventbatch creates)
        self.waiting: set[str] = set()  # pods submitted, not yet in a PodGroup

    # -- the log side ---------------------------------------------------------

    def fold(self, envelope: Envelope) -> bool:
        e = envelope.payload
        if isinstance(e, PodGroupSubmitRequested):
            meta = e.manifest.metadata
            self.groups[e.podgroup] = SeenGroup(meta.uid, meta.generation)
        elif isinstance(e, PodGroupDeleteRequested):
            if (seen := self.groups.get(e.podgroup)) is not None:
                seen.alive = False
        elif isinstance(e, PodGroupCreated):
            if e.podgroup not in self.groups:
                self.made.add(e.podgroup)
        elif isinstance(e, PodGroupDeleted):
            self.made.discard(e.podgroup)
        elif isinstance(e, PodSubmitRequested):
            self.pods[e.pod] = e.uid
            self.waiting.add(e.pod)
        elif isinstance(e, PodRequested):
            self.pods[e.pod] = e.uid
            self.waiting.discard(e.pod)
        elif isinstance(e, PodDeleted):
            self.pods.pop(e.pod, None)
            self.waiting.discard(e.pod)
        else:
            return False
        if isinstance(e, PodSubmitRequested | PodRequested | PodDeleted):
            self.dirty[("pods", e.pod)] = None
        else:
            self.dirty[("podgroups", e.podgroup)] = None
        return True

    # -- the API side ---------------------------------------------------------

    def _snapshot(self, informer: str, items: list[Obj], *, namespaced: bool = True) -> None:
        kind = informer.split(":")[0]
        old, new, first = self._relist(informer, items, namespaced=namespaced)
        for key in sorted(set(old) | set(new)):
            if first or old.get(key) is not new.get(key):
                self.dirty[(kind, key)] = None
        if first and kind == "podgroups":
            for key in sorted(self.groups):
                self.dirty[(kind, key)] = None
        if first and kind == "pods":
            for key in sorted(self.waiting):
                self.dirty[(kind, key)] = None
        self._changed.set()

    # -- the difference -------------------------------------------------------

    def next_deadline(self) -> int | None:
        return self.clock.now() if self.dirty else None

    def due(self, now: int) -> list[list[Envelope]]:
        batches = []
        for kind, key in list(self.dirty):
            if not self._is_synced(kind):
                continue
            del self.dirty[(kind, key)]
            obj = self._api(kind, key)
            events = self._derive_group(key, obj) if kind == "podgroups" else self._derive_pod(key, obj)
            if events:
                batches.append([Envelope.wrap(e, recorded_at=now) for e in events])
        return batches

    def _derive_group(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.groups.get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return [PodGroupDeleteRequested(podgroup=key, reason="Deleted")] if seen is not None and seen.alive else []
        if seen is None and (key in self.made or self._owned_by_a_job(obj)):
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        if seen is not None and seen.alive and seen.uid == uid and generation <= seen.generation:
            return []
        manifest = self._admit(obj)
        if not isinstance(manifest, PodGroup):
            return []
        replaced = [PodGroupDeleteRequested(podgroup=key, reason="Replaced")] if seen is not None and seen.alive and seen.uid != uid else []
        return [*replaced, PodGroupSubmitRequested(podgroup=key, manifest=manifest)]

    def _owned_by_a_job(self, obj: Obj) -> bool:
        group, _ = self.api_groups["Job"]
        refs = (obj.get("metadata") or {}).get("ownerReferences") or []
        return any(r.get("kind") == "Job" and str(r.get("apiVersion", "")).startswith(group + "/") for r in refs)

    def _derive_pod(self, key: str, obj: Obj | None) -> list[Event]:
        if obj is None:
            return [PodDeleted(pod=key, reason="Deleted")] if key in self.waiting else []
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase", "")
        if REQUESTED_AT in (meta.get("annotations") or {}):
            return []  # one eventbatch created for a Job
        if key in self.pods:
            return []  # on the log: the watch adapter reports what becomes of it
        if meta.get("deletionTimestamp") or spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return []  # going, placed already, or over: nothing for the scheduler
        manifest = self._admit(obj)
        if not isinstance(manifest, Pod):
            return []
        return [PodSubmitRequested(pod=key, manifest=manifest, uid=uid_of(obj))]

    # -- running --------------------------------------------------------------

    def make_informers(self, kube: Kube) -> list[Informer]:
        informer = partial(self._informer, kube)
        out = [informer("podgroups", kube.custom.list_cluster_custom_object, *self.api_groups["PodGroup"], "podgroups")]
        for scheduler in SCHEDULER_NAMES:
            out.append(
                informer(f"pods:{scheduler}", kube.core.list_pod_for_all_namespaces, field_selector=f"spec.schedulerName={scheduler}")
            )
        return out

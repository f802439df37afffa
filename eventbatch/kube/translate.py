"""What an API object says, in the terms of the log: pure functions, no I/O.

Where it sits: the kube adapter (``eventbatch.kube.observe``) compares these
summaries of what the API server holds with what the log already records,
and appends only the difference. ``PodView`` reads a core/v1 Pod's status
(phase, node, readiness, restarts, exit code); ``node_digest`` keeps the
parts of a Node that scheduling reads, so a heartbeat is not an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from schemas.decode import decode
from schemas.resources import Node

Obj = dict[str, Any]
REQUESTED_AT = "eventbatch.io/requested-at"  # annotation: log position of the PodRequested


def key_of(obj: Obj, *, namespaced: bool = True) -> str:
    meta = obj.get("metadata") or {}
    if not namespaced:
        return meta.get("name", "")
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


@dataclass(frozen=True)
class PodView:
    uid: str
    phase: str
    node: str
    ready: bool
    restarts: int
    last_exit_code: int  # of the latest restart
    exit_code: int  # of a terminated pod
    reason: str
    message: str
    deleting: bool
    requested_at: int | None

    @classmethod
    def of(cls, obj: Obj) -> PodView:
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        statuses = status.get("containerStatuses") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
        last_exit, exit_code, reason = 0, 0, status.get("reason") or ""
        for c in statuses:
            last = ((c.get("lastState") or {}).get("terminated")) or {}
            if last:
                last_exit = int(last.get("exitCode") or 0)
            terminated = ((c.get("state") or {}).get("terminated")) or {}
            if terminated and int(terminated.get("exitCode") or 0) != 0 and exit_code == 0:
                exit_code = int(terminated["exitCode"])
                reason = reason or terminated.get("reason") or ""
        if status.get("phase") == "Failed" and exit_code == 0:
            exit_code = 1
        annotation = (meta.get("annotations") or {}).get(REQUESTED_AT)
        return cls(
            uid=meta.get("uid", ""),
            phase=status.get("phase") or "Pending",
            node=spec.get("nodeName") or "",
            ready=ready,
            restarts=restarts,
            last_exit_code=last_exit,
            exit_code=exit_code,
            reason=reason,
            message=status.get("message") or "",
            deleting=bool(meta.get("deletionTimestamp")),
            requested_at=int(annotation) if annotation and annotation.isdigit() else None,
        )


def node_manifest(obj: Obj) -> Node:
    return decode(obj, Node, strict=False)


def node_digest(node: Node) -> bytes:
    """The parts of a node that scheduling reads: labels, taints, schedulability, resources, readiness."""
    ready = [c.get("status") for c in node.status.conditions if c.get("type") == "Ready"]
    return msgspec.json.encode(
        [
            sorted(node.metadata.labels.items()),
            node.spec,
            sorted(node.status.allocatable.items()),
            sorted(node.status.capacity.items()),
            ready,
        ]
    )

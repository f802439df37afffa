"""core/v1 Events about objects: how the kube adapter tells ``kubectl describe`` readers.

Where it sits: used by the watch adapter to report a custom object refused
by admission (it is never appended to the log), by the actuator to report
a side effect that failed for good, and by the status writer
(``eventbatch.kube.status``) to report scheduling decisions and job phase
changes, stamped with the time they were recorded on the log.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from eventbatch.kube.client import Kube

log = logging.getLogger(__name__)
COMPONENT = "eventbatch"


async def post_event(kube: Kube, obj: dict[str, Any], *, reason: str, message: str, kind: str = "Normal",
                     at_ms: int | None = None) -> None:
    """Create an Event about ``obj``; ``at_ms``: when it happened (ms since the epoch), now if not given."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    when = datetime.datetime.now(datetime.UTC) if at_ms is None else datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC)
    now = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": obj.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message[:1024],
        "type": kind,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await kube.call(kube.core.create_namespaced_event, namespace, body)
    except Exception as exc:
        log.warning("could not post event", extra={"reason": reason, "error": repr(exc)[:200]})

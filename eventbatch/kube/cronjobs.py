"""The Jobs a CronJob starts, as objects in the API server.

Where it sits: shared by the kube actuator, the watch adapter and the status
writer (``--cluster kube``). A CronJob's run is decided on the log (the
CronJob controller appends the run's ``JobSubmitRequested``, which the job
controller answers with ``JobCreated``), so its Job does not come from the
API server as a user's Job does. As Volcano's CronJob controller does, the
actuator then creates the Job object, owned by the CronJob object (the owner
reference ``schemas.cronjob.job_for`` wrote, with the CronJob's uid). The
watch adapter recognises that object as the Job already on the log (the
same key, the same owning CronJob incarnation) and does not submit it a
second time; the status writer writes its status like any Job's.

Only a CronJob that came from the API server (its owner reference carries a
uid) has its Jobs created there: Kubernetes refuses an owner reference
without a uid, and a CronJob applied to the log alone runs its Jobs on the
log alone.

A JobFlow's steps are made the same way (``handlers.jobflow``: the JobFlow
controller submits each step's Job on the log, owned by the JobFlow, as
Volcano's jobflow controller makes it): every kind in ``JOB_CONTROLLERS``
has its Jobs created, recognised and written alike.
"""

from __future__ import annotations

from typing import Any

from schemas.decode import to_manifest
from schemas.resources import Job

# The controllers whose Jobs are made on the log and created in the API server by the actuator.
JOB_CONTROLLERS = ("CronJob", "JobFlow")


def cronjob_owner_uid(job: Job) -> str:
    """The uid of the CronJob (or JobFlow, ``JOB_CONTROLLERS``) object that controls ``job``, or "" when none does."""
    if job.metadata.uid:  # the Job came from the API server itself
        return ""
    for owner in job.metadata.owner_references:
        if owner.kind in JOB_CONTROLLERS and owner.controller and owner.uid:
            return owner.uid
    return ""


def controller_uid(obj: dict[str, Any], kind: str) -> str:
    """The uid of the controlling owner of kind ``kind`` of an API object, or ""."""
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("kind") == kind and owner.get("controller"):
            return str(owner.get("uid") or "")
    return ""


def job_object(job: Job, group: str, version: str) -> dict[str, Any]:
    """The Job object to create for a CronJob's run: its manifest as on the log, in the served API group."""
    body = to_manifest(job)
    body.pop("status", None)
    body["apiVersion"] = f"{group}/{version}"
    body["kind"] = "Job"
    meta = dict(body.get("metadata") or {})
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
        meta.pop(key, None)
    body["metadata"] = meta
    return body

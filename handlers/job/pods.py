"""The exact PodGroup and pods a job asks for.

Where it sits: the job controller turns a job record into ``PodGroupCreated``
and ``PodRequested`` decisions with these functions; the actuator creates
what they name, and the scheduler reads their parsed requests and priority.
Pod names are deterministic (``<job>-<task>-<index>``) so creating a pod
twice is harmless. Labels and annotations are the ones Volcano sets.
"""

from __future__ import annotations

from typing import Any

import msgspec

from handlers.job.plugins import PodShape, finish_pod, owner_reference, shape_pod
from projections.job_records import JobRecord, JobsState, task_min_available
from schemas.defaults import SCHEDULER_NAME
from schemas.events import PodGroupCreated, PodGroupUpdated, PodRequested
from schemas.quantity import add, format_resources, requests_of
from schemas.resources import (
    Container,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodGroup,
    PodGroupSpec,
    Resources,
    TaskSpec,
)

JOB_NAME = "volcano.sh/job-name"
JOB_NAMESPACE = "volcano.sh/job-namespace"
TASK_SPEC = "volcano.sh/task-spec"
JOB_VERSION = "volcano.sh/job-version"
QUEUE_NAME = "volcano.sh/queue-name"
TASK_INDEX = "volcano.sh/task-index"
TEMPLATE = "volcano.sh/template-uid"
GROUP_NAME = "scheduling.k8s.io/group-name"
# Tasks whose pods wait for other tasks (dependsOn): the gang check must not
# count them missing before they are created, as Volcano's scheduler does.
DEPENDENT_TASKS = "eventbatch.io/dependent-tasks"


def pod_name(job: JobRecord, task: str, index: int) -> str:
    return f"{job.name}-{task}-{index}"


def pod_key(job: JobRecord, task: str, index: int) -> str:
    return f"{job.namespace}/{pod_name(job, task, index)}"


def podgroup_name(job: JobRecord) -> str:
    """Volcano names a job's PodGroup ``<job>-<uid>`` (just ``<job>`` without a uid)."""
    uid = job.manifest.metadata.uid
    return f"{job.name}-{uid}" if uid else job.name


def _owner(job: JobRecord) -> OwnerReference:
    ref = owner_reference(job)
    return OwnerReference(
        api_version=ref["apiVersion"],
        kind=ref["kind"],
        name=ref["name"],
        uid=ref.get("uid", ""),
        controller=True,
        block_owner_deletion=True,
    )


def priority_class_of(job: JobRecord, task: TaskSpec) -> str:
    return task.template.spec.priority_class_name or job.manifest.spec.priority_class_name


def min_resources(job: JobRecord, state: JobsState) -> Resources:
    """The requests of the job's ``minAvailable`` minimum members.

    Tasks are taken by priority (highest first, spec order among equals):
    first each task's own ``minAvailable``, then further replicas, until
    ``minAvailable`` pods are counted.
    """
    tasks = sorted(job.manifest.spec.tasks, key=lambda t: -state.priority_of(priority_class_of(job, t)))
    room = job.manifest.spec.min_available
    taken: dict[str, int] = {}
    for task in tasks:
        taken[task.name] = max(0, min(room, task_min_available(task), task.replicas))
        room -= taken[task.name]
    for task in tasks:
        extra = max(0, min(room, task.replicas - taken[task.name]))
        taken[task.name] += extra
        room -= extra
    total: Resources = {}
    for task in tasks:
        one = requests_of(task.template.spec)
        for _ in range(taken[task.name]):
            total = add(total, one)
    return total


def podgroup(job: JobRecord, state: JobsState, *, update: bool = False) -> PodGroupCreated | PodGroupUpdated:
    spec = job.manifest.spec
    needed = min_resources(job, state)
    dependent = [t.name for t in spec.tasks if t.depends_on is not None and t.depends_on.name]
    manifest = PodGroup(
        metadata=ObjectMeta(
            name=podgroup_name(job),
            namespace=job.namespace,
            labels={JOB_NAME: job.name, JOB_NAMESPACE: job.namespace},
            # The job's own annotations travel to its PodGroup, as Volcano copies them
            # (task topology, data locality and other scheduling hints read them there).
            annotations={
                **job.manifest.metadata.annotations,
                **({DEPENDENT_TASKS: ",".join(dependent)} if dependent else {}),
            },
            owner_references=[_owner(job)],
        ),
        spec=PodGroupSpec(
            min_member=spec.min_available,
            min_task_member={t.name: task_min_available(t) for t in spec.tasks},
            queue=spec.queue or "default",
            priority_class_name=spec.priority_class_name,
            min_resources=format_resources(needed),
            network_topology=spec.network_topology,
        ),
    )
    cls = PodGroupUpdated if update else PodGroupCreated
    key = f"{job.namespace}/{podgroup_name(job)}"
    return cls(podgroup=key, job=job.key, manifest=manifest, min_resources=needed)


def _job_volumes(job: JobRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, mounts = [], []
    for i, vol in enumerate(job.manifest.spec.volumes):
        name = vol.get("volumeClaimName") or f"{job.name}-volume-{i}"
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
        mounts.append({"name": name, "mountPath": vol.get("mountPath", "")})
    return volumes, mounts


def _container(c: Container, shape: PodShape, mounts: list[dict[str, Any]], ports: bool) -> Container:
    return msgspec.structs.replace(
        c,
        env=[*c.env, *shape.env],
        volume_mounts=[*c.volume_mounts, *mounts, *shape.mounts],
        ports=[*c.ports, *shape.ports] if ports else c.ports,
    )


def pod_request(job: JobRecord, task: TaskSpec, index: int, state: JobsState) -> PodRequested:
    template = task.template
    name = pod_name(job, task.name, index)
    shape = shape_pod(PodShape(job=job, task=task, index=index, name=name))
    volumes, mounts = _job_volumes(job)
    spec = job.manifest.spec
    group = podgroup_name(job)
    pc_name = priority_class_of(job, task)
    priority = state.priority_of(pc_name)
    names = {
        JOB_NAME: job.name,
        JOB_NAMESPACE: job.namespace,
        TASK_SPEC: task.name,
        QUEUE_NAME: spec.queue or "default",
        TASK_INDEX: str(index),
        JOB_VERSION: str(job.version),
    }
    meta = ObjectMeta(
        name=name,
        namespace=job.namespace,
        labels={**template.metadata.labels, **names},
        annotations={**template.metadata.annotations, **names, GROUP_NAME: group, TEMPLATE: f"{job.name}-{task.name}"},
        owner_references=[_owner(job)],
    )
    pod_spec = msgspec.structs.replace(
        template.spec,
        containers=[_container(c, shape, mounts, True) for c in template.spec.containers],
        init_containers=[_container(c, shape, mounts, False) for c in template.spec.init_containers],
        volumes=[*template.spec.volumes, *volumes, *shape.volumes],
        scheduler_name=template.spec.scheduler_name or spec.scheduler_name or SCHEDULER_NAME,
        priority_class_name=pc_name,
        priority=priority,
        hostname=shape.hostname or template.spec.hostname,
        subdomain=shape.subdomain or template.spec.subdomain,
    )
    return PodRequested(
        pod=f"{job.namespace}/{name}",
        job=job.key,
        podgroup=f"{job.namespace}/{group}",
        task=task.name,
        index=index,
        manifest=finish_pod(shape, Pod(metadata=meta, spec=pod_spec)),
        requests=requests_of(template.spec),
        priority=priority,
    )

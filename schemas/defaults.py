"""Volcano's defaulting of Job, Queue, Command, PodGroup and Pod manifests.

Where it sits: between decoding (``schemas.decode``) and the admission rules
(``schemas.admission``), in the order Volcano's mutating webhook runs before
its validating one. The functions are pure: each returns a new object and
leaves its argument untouched.

What is filled in, as Volcano does it:

* Job: ``metadata.namespace`` ``default``; ``spec.queue`` ``default``;
  ``spec.maxRetry`` 3 when 0; ``spec.schedulerName`` ``SCHEDULER_NAME`` when
  empty (a job naming ``volcano`` or any other scheduler keeps it, so a
  Volcano manifest is accepted as is and the scheduler can decide whether the
  job is its own); task names ``default<i>`` when empty; task ``maxRetry`` 3
  when 0; task ``minAvailable`` = its replicas when unset; job
  ``minAvailable`` = the sum of the tasks' ``minAvailable`` when 0; a pod
  template with ``hostNetwork: true`` and no ``dnsPolicy`` gets
  ``ClusterFirstWithHostNet``; the ``svc`` plugin is added for
  ``tensorflow``, ``mpi`` and ``pytorch`` jobs, and ``ssh`` for ``mpi`` jobs.
* Queue: ``weight`` 1 when 0; ``reclaimable`` true when unset.
* Command, PodGroup and Pod: ``metadata.namespace`` ``default``; PodGroup
  ``queue`` ``default`` when empty.
"""

from __future__ import annotations

from functools import singledispatch

from msgspec.structs import replace

from schemas.resources import Command, Job, Manifest, ObjectMeta, Pod, PodGroup, PodTemplateSpec, Queue, TaskSpec

__all__ = [
    "DEFAULT_MAX_RETRY",
    "DEFAULT_NAMESPACE",
    "DEFAULT_QUEUE",
    "DEFAULT_TASK_PREFIX",
    "SCHEDULER_NAME",
    "SCHEDULER_NAMES",
    "apply_defaults",
]

# The scheduler name this project's scheduler answers to.
SCHEDULER_NAME = "eventbatch"
# The names a Job may carry and still be this project's to schedule: its own,
# and Volcano's, so that a Volcano manifest submitted as is gets scheduled.
SCHEDULER_NAMES = (SCHEDULER_NAME, "volcano")
DEFAULT_QUEUE = "default"
DEFAULT_NAMESPACE = "default"
DEFAULT_MAX_RETRY = 3
DEFAULT_TASK_PREFIX = "default"

# Distributed-framework plugins that need the svc plugin, and mpi needs ssh too.
_NEEDS_SVC = ("tensorflow", "mpi", "pytorch")

@singledispatch
def apply_defaults(obj: Manifest) -> Manifest:
    """``obj`` with Volcano's defaults filled in, of the same type; a Node comes back unchanged."""
    return obj


def _namespaced(meta: ObjectMeta) -> ObjectMeta:
    return meta if meta.namespace else replace(meta, namespace=DEFAULT_NAMESPACE)


def _template(template: PodTemplateSpec) -> PodTemplateSpec:
    spec = template.spec
    if spec.extra.get("hostNetwork") is True and not spec.extra.get("dnsPolicy"):
        spec = replace(spec, extra={**spec.extra, "dnsPolicy": "ClusterFirstWithHostNet"})
        return replace(template, spec=spec)
    return template


def _task(task: TaskSpec, index: int) -> TaskSpec:
    return replace(
        task,
        name=task.name or f"{DEFAULT_TASK_PREFIX}{index}",
        min_available=task.replicas if task.min_available is None else task.min_available,
        max_retry=task.max_retry or DEFAULT_MAX_RETRY,
        template=_template(task.template),
    )


def _plugins(plugins: dict[str, list[str]]) -> dict[str, list[str]]:
    out = dict(plugins)
    if any(name in plugins for name in _NEEDS_SVC):
        out.setdefault("svc", [])
    if "mpi" in plugins:
        out.setdefault("ssh", [])
    return out


@apply_defaults.register
def _job(job: Job) -> Job:
    spec = job.spec
    tasks = [_task(task, i) for i, task in enumerate(spec.tasks)]
    min_available = spec.min_available or sum(t.min_available or 0 for t in tasks)
    spec = replace(
        spec,
        queue=spec.queue or DEFAULT_QUEUE,
        max_retry=spec.max_retry or DEFAULT_MAX_RETRY,
        scheduler_name=spec.scheduler_name or SCHEDULER_NAME,
        tasks=tasks,
        min_available=min_available,
        plugins=_plugins(spec.plugins),
    )
    return replace(job, metadata=_namespaced(job.metadata), spec=spec)


@apply_defaults.register
def _queue(queue: Queue) -> Queue:
    spec = queue.spec
    spec = replace(
        spec,
        weight=spec.weight or 1,
        reclaimable=True if spec.reclaimable is None else spec.reclaimable,
    )
    return replace(queue, spec=spec)


@apply_defaults.register
def _command(command: Command) -> Command:
    return replace(command, metadata=_namespaced(command.metadata))


@apply_defaults.register
def _pod_group(group: PodGroup) -> PodGroup:
    spec = group.spec
    if not spec.queue:
        spec = replace(spec, queue=DEFAULT_QUEUE)
    return replace(group, metadata=_namespaced(group.metadata), spec=spec)


@apply_defaults.register
def _pod(pod: Pod) -> Pod:
    return replace(pod, metadata=_namespaced(pod.metadata))

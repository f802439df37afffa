"""Which changes a live job accepts: minAvailable, task replicas, priorityClassName.

A task's own ``minAvailable`` may change with its replicas (the edge defaults
it to the replicas, so re-applying a scaled manifest changes it too).

Where it sits: the job controller answers a ``JobUpdateRequested`` with
``JobUpdated`` when this finds no problem and with ``JobUpdateRefused``
naming the problems otherwise; the command line checks the same rules before
it appends the request, so both say the same thing.
"""

from __future__ import annotations

import msgspec

from schemas.resources import Job, JobSpec, TaskSpec

MUTABLE = (
    "only minAvailable, tasks[*].replicas (with tasks[*].minAvailable) and priorityClassName "
    "may change on a live job"
)


def _task_view(task: TaskSpec) -> TaskSpec:
    return msgspec.structs.replace(task, replicas=0, min_available=None)


def _frozen_view(spec: JobSpec) -> JobSpec:
    """The spec with every field that may change reset, for comparison."""
    tasks = [_task_view(t) for t in spec.tasks]
    return msgspec.structs.replace(spec, min_available=0, priority_class_name="", tasks=tasks)


def update_problems(old: Job, new: Job) -> list[str]:
    """Why ``new`` cannot replace ``old`` on a live job; empty when it can."""
    problems: list[str] = []
    old_tasks = [t.name for t in old.spec.tasks]
    new_tasks = [t.name for t in new.spec.tasks]
    if old_tasks != new_tasks:
        problems.append(f"tasks cannot be added, removed or reordered (had {old_tasks}, got {new_tasks})")
    elif _frozen_view(old.spec) != _frozen_view(new.spec):
        changed = [
            name
            for name in JobSpec.__struct_fields__
            if name not in ("min_available", "priority_class_name", "tasks")
            and getattr(old.spec, name) != getattr(new.spec, name)
        ]
        for i, (a, b) in enumerate(zip(old.spec.tasks, new.spec.tasks, strict=True)):  # the same names
            if _task_view(a) != _task_view(b):
                changed.append(f"tasks[{i}] ({a.name}) other than replicas")
        problems.append(f"{MUTABLE}; changed: {', '.join(_camel(c) for c in changed)}")
    total = sum(t.replicas for t in new.spec.tasks)
    if new.spec.min_available < 0 or new.spec.min_available > total:
        problems.append(f"minAvailable {new.spec.min_available} must be between 0 and the total replicas {total}")
    for i, task in enumerate(new.spec.tasks):
        if task.replicas < 0:
            problems.append(f"tasks[{i}].replicas must not be negative")
        elif task.min_available is not None and task.min_available > task.replicas:
            problems.append(f"tasks[{i}].minAvailable {task.min_available} exceeds its replicas {task.replicas}")
    return problems


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)

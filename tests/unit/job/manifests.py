"""Job manifests for the job-controller tests, written as YAML and loaded at the edge."""

from __future__ import annotations

from typing import Any

import yaml

from schemas.resources import Job
from tests.unit.job.driver import job_from_yaml


def task(name: str, replicas: int, *, cpu: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "replicas": replicas,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": name, "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}
                ],
            }
        },
        **extra,
    }


def job(
    *,
    name: str = "job",
    tasks: list[dict[str, Any]] | None = None,
    replicas: int = 2,
    **spec: Any,
) -> Job:
    """A Volcano Job manifest; ``spec`` keys are Volcano's (``minAvailable``, ``policies``, ...)."""
    doc = {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"queue": "default", "tasks": tasks or [task("worker", replicas)], **spec},
    }
    return job_from_yaml(yaml.safe_dump(doc, sort_keys=False))

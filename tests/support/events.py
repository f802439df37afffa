"""Realistic events for log tests and benchmarks.

Where it sits: beside the test suite; the log contract suite and
``bench/log_throughput.py`` append these. A ``PodRequested`` carries a full
pod manifest as the job controller writes it (owner reference, labels,
annotations, a GPU container with requests and limits, tolerations, node
affinity), so sizes and decode costs are those of a real cluster.
"""

from __future__ import annotations

from schemas.envelope import Causation, Envelope
from schemas.events import NodeAdded, PodBound, PodRequested, PodStarted
from schemas.events.base import Event
from schemas.resources import (
    Affinity,
    Container,
    Node,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    NodeStatus,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodSpec,
    ResourceRequirements,
    Toleration,
)

NAMESPACE = "ml-training"
RECORDED_AT = 1_767_225_600_000  # 2026-01-01T00:00:00Z, in milliseconds


def pod_name(job: str, index: int) -> str:
    return f"{job}-worker-{index}"


def pod_manifest(job: str, index: int, *, annotation_bytes: int = 0) -> Pod:
    annotations = {"scheduling.k8s.io/group-name": f"{job}-pg", "volcano.sh/task-spec": "worker"}
    if annotation_bytes:
        annotations["example.com/blob"] = "x" * annotation_bytes
    return Pod(
        metadata=ObjectMeta(
            name=pod_name(job, index),
            namespace=NAMESPACE,
            labels={"volcano.sh/job-name": job, "volcano.sh/task-spec": "worker", "team": "vision"},
            annotations=annotations,
            owner_references=[
                OwnerReference(
                    api_version="batch.volcano.sh/v1alpha1",
                    kind="Job",
                    name=job,
                    uid=f"6f1c2d3e-{index % 10000:04d}-4a5b-8c9d-0e1f2a3b4c5d",
                    controller=True,
                    block_owner_deletion=True,
                )
            ],
        ),
        spec=PodSpec(
            containers=[
                Container(
                    name="trainer",
                    image="nvcr.io/nvidia/pytorch:24.05-py3",
                    command=["torchrun", "--nnodes=8", "--nproc-per-node=1", "train.py"],
                    args=["--epochs=90", "--batch-size=256", f"--rank={index}"],
                    env=[{"name": "MASTER_ADDR", "value": f"{job}-worker-0.{job}"}, {"name": "NCCL_DEBUG", "value": "WARN"}],
                    resources=ResourceRequirements(
                        requests={"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
                        limits={"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
                    ),
                )
            ],
            tolerations=[Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
            affinity=Affinity(
                node_affinity=NodeAffinity(
                    required_during_scheduling_ignored_during_execution=NodeSelector(
                        node_selector_terms=[
                            NodeSelectorTerm(
                                match_expressions=[
                                    NodeSelectorRequirement(key="gpu.type", operator="In", values=["a100", "h100"])
                                ]
                            )
                        ]
                    )
                )
            ),
            priority_class_name="high-priority",
            scheduler_name="volcano",
            restart_policy="OnFailure",
            hostname=pod_name(job, index),
            subdomain=job,
        ),
    )


def pod_requested(job: str, index: int, *, annotation_bytes: int = 0) -> PodRequested:
    return PodRequested(
        pod=f"{NAMESPACE}/{pod_name(job, index)}",
        job=f"{NAMESPACE}/{job}",
        podgroup=f"{NAMESPACE}/{job}-pg",
        task="worker",
        index=index,
        manifest=pod_manifest(job, index, annotation_bytes=annotation_bytes),
        requests={"cpu": 8000, "memory": 64 * 2**30, "nvidia.com/gpu": 1},
        priority=1000,
    )


def pod_bound(job: str, index: int) -> PodBound:
    return PodBound(
        pod=f"{NAMESPACE}/{pod_name(job, index)}",
        job=f"{NAMESPACE}/{job}",
        node=f"gpu-node-{index % 64:03d}",
        rule="allocate",
    )


def pod_started(job: str, index: int) -> PodStarted:
    return PodStarted(pod=f"{NAMESPACE}/{pod_name(job, index)}", job=f"{NAMESPACE}/{job}", node=f"gpu-node-{index % 64:03d}")


def node_added(index: int) -> NodeAdded:
    name = f"gpu-node-{index:03d}"
    capacity = {"cpu": "96", "memory": "1Ti", "nvidia.com/gpu": "8", "pods": "110"}
    return NodeAdded(
        node=name,
        manifest=Node(
            metadata=ObjectMeta(name=name, labels={"gpu.type": "h100", "kubernetes.io/hostname": name}),
            status=NodeStatus(capacity=capacity, allocatable=capacity),
        ),
    )


def wrap(event: Event, *, at: int = 0, causation: Causation | None = None) -> Envelope:
    return Envelope.wrap(event, recorded_at=RECORDED_AT + at, causation=causation)


def mixed_batch(job: str, size: int, *, start: int = 0) -> list[Envelope]:
    """A realistic mix: a third pod requests (full manifest), a third binds, a third starts."""
    makers = (pod_requested, pod_bound, pod_started)
    return [wrap(makers[i % 3](job, start + i), at=start + i) for i in range(size)]

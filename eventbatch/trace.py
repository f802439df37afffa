"""Import of the Alibaba GPU cluster trace (openb, 2023) as a scenario.

Where it sits: a tool in front of ``eventbatch simulate``. It turns the
trace's CSVs into a scenario (JSON) plus a sidecar of what the trace itself
recorded, so the simulation report can put both side by side:

- one node per row of the node list: ``cpu_milli``, ``memory_mib``, ``gpu``,
  and the GPU ``model`` as the node label ``nvidia.com/gpu.product``;
- one single-task Volcano Job per pod, submitted at its ``creation_time``,
  running for ``deletion_time - scheduled_time`` (``- creation_time`` when it
  never ran), exiting 1 when the trace says it Failed;
- one queue per QoS class (``ls``, ``guaranteed``, ``burstable``, ``be``) and a
  priority class of the same name (LS highest, BE lowest); BE pods carry
  ``volcano.sh/preemptable: "true"``, the others ``"false"``;
- GPU requests: ``num_gpu`` whole GPUs, or for a GPU-sharing pod
  (``num_gpu`` 1, ``gpu_milli`` < 1000) ``gpu_milli`` milli-GPUs of one
  device (``nvidia.com/gpu: 460m``): the scheduler's device model
  (``handlers.scheduler.devices``) places it on one GPU of its node with that
  share free, never on shares of several; each node's ``gpu`` devices are its
  ``nvidia.com/gpu`` allocatable; ``gpu_spec`` (allowed GPU models,
  ``|``-separated) becomes required node affinity on the model label.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from eventbatch.sim.report import summarize
from handlers.scheduler.devices import GPU, MODEL_LABEL

QOS = {"LS": ("ls", 1000, 4), "Guaranteed": ("guaranteed", 800, 2), "Burstable": ("burstable", 500, 1), "BE": ("be", 100, 1)}
NAMESPACE = "openb"


def _node(row: dict[str, str]) -> dict[str, Any]:
    allocatable: dict[str, str] = {"cpu": f"{row['cpu_milli']}m", "memory": f"{row['memory_mib']}Mi", "pods": "110"}
    labels = {"eventbatch.io/trace": "openb"}
    if int(row.get("gpu") or 0) > 0:
        allocatable[GPU] = row["gpu"]
        if row.get("model"):
            labels[MODEL_LABEL] = row["model"]
    return {"name": row["sn"], "allocatable": allocatable, "labels": labels}


def gpu_request(row: dict[str, str]) -> str | None:
    count = int(row.get("num_gpu") or 0)
    milli = int(row.get("gpu_milli") or 0)
    if count == 0:
        return None
    if count == 1 and 0 < milli < 1000:
        return f"{milli}m"
    return str(count)


def _times(row: dict[str, str]) -> tuple[int, int, int | None]:
    created = int(row.get("creation_time") or 0)
    deleted = int(row.get("deletion_time") or created)
    scheduled = int(row["scheduled_time"]) if row.get("scheduled_time") else None
    return created, deleted, scheduled


def _job(row: dict[str, str], default_duration: int) -> tuple[int, dict[str, Any]]:
    queue, _, _ = QOS.get(row.get("qos") or "LS", QOS["LS"])
    created, deleted, scheduled = _times(row)
    duration = deleted - (scheduled if scheduled is not None else created) if "deletion_time" in row else default_duration
    requests = {"cpu": f"{row['cpu_milli']}m", "memory": f"{row['memory_mib']}Mi"}
    if (gpu := gpu_request(row)) is not None:
        requests[GPU] = gpu
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "openb/trace", "resources": {"requests": requests}}],
        "restartPolicy": "Never",
    }
    models = [m for m in (row.get("gpu_spec") or "").split("|") if m]
    if models:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": MODEL_LABEL, "operator": "In", "values": models}]}]
                }
            }
        }
    annotations = {"eventbatch.io/sim-duration": f"{max(duration, 0)}s"}
    if row.get("pod_phase") == "Failed":
        annotations["eventbatch.io/sim-exit-code"] = "1"
    job = {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": row["name"], "namespace": NAMESPACE},
        "spec": {
            "minAvailable": 1,
            "queue": queue,
            "priorityClassName": queue,
            "maxRetry": 0,
            "tasks": [
                {
                    "name": "main",
                    "replicas": 1,
                    "template": {
                        "metadata": {
                            "labels": {"volcano.sh/preemptable": "true" if queue == "be" else "false"},
                            "annotations": annotations,
                        },
                        "spec": spec,
                    },
                }
            ],
        },
    }
    return created, job


def recorded_stats(rows: list[dict[str, str]], nodes: list[dict[str, str]]) -> dict[str, Any]:
    """What the trace itself recorded: waits per queue, pods that never ran, GPU allocation."""
    waits: dict[str, list[int]] = defaultdict(list)
    never_ran = 0
    total_gpu_milli = sum(int(n.get("gpu") or 0) for n in nodes) * 1000
    changes: list[tuple[int, int]] = []
    for row in rows:
        created, deleted, scheduled = _times(row)
        queue = QOS.get(row.get("qos") or "LS", QOS["LS"])[0]
        if scheduled is None:
            never_ran += 1
            continue
        waits[queue].append((scheduled - created) * 1000)
        count, milli = int(row.get("num_gpu") or 0), int(row.get("gpu_milli") or 0)
        amount = milli if count == 1 and 0 < milli < 1000 else count * 1000
        if amount:
            changes += [(scheduled, amount), (deleted, -amount)]
    changes.sort()
    area = peak = allocated = 0
    last = changes[0][0] if changes else 0
    for moment, delta in changes:
        area += allocated * (moment - last)
        allocated += delta
        peak = max(peak, allocated)
        last = moment
    span = (changes[-1][0] - changes[0][0]) if changes else 0
    return {
        "pods": len(rows),
        "never_ran": never_ran,
        "waits_ms": {q: summarize(v) for q, v in sorted(waits.items())},
        "gpu_allocation_mean": (area / span / total_gpu_milli) if span and total_gpu_milli else 0.0,
        "gpu_allocation_peak": (peak / total_gpu_milli) if total_gpu_milli else 0.0,
    }


def import_openb(
    folder: Path, *, pods_file: str = "openb_pod_list_default.csv", limit: int | None = None, default_duration: int = 3600
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scenario, recorded) for the trace in ``folder``."""
    with open(folder / "openb_node_list_all_node.csv", newline="") as f:
        node_rows = list(csv.DictReader(f))
    with open(folder / pods_file, newline="") as f:
        pod_rows = list(csv.DictReader(f))
    if limit is not None:
        pod_rows = pod_rows[:limit]
    workload = []
    for row in pod_rows:
        at, job = _job(row, default_duration)
        workload.append({"at": f"{at}s", "apply": job})
    scenario = {
        "nodes": [_node(r) for r in node_rows],
        "queues": [
            {
                "apiVersion": "scheduling.volcano.sh/v1beta1",
                "kind": "Queue",
                "metadata": {"name": name},
                "spec": {"weight": weight, "reclaimable": True},
            }
            for name, _, weight in QOS.values()
        ],
        "priorityClasses": {name: value for name, value, _ in QOS.values()},
        "workload": workload,
        "until": "all-finished",
    }
    return scenario, recorded_stats(pod_rows, node_rows)

"""Job plugins: env, svc, ssh, pytorch, mpi, tensorflow, as Volcano's job controller runs them.

Where it sits: the job controller calls ``job_resources`` when a job is
submitted (the Service, the hosts ConfigMap, the SSH Secret it needs) and
``shape_pod`` for every pod it requests (environment, ports, volumes,
hostname and subdomain). Both are pure: the SSH key pair itself is generated
by the actuator from ``SecretRequested``, so no secret reaches the log.

As in Volcano, ``tensorflow``, ``pytorch`` and ``mpi`` switch ``svc`` on, and
``mpi`` switches ``ssh`` on too. Plugin arguments use Volcano's flags
(``--master=``, ``--worker=``, ``--port=``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from projections.job_records import JobRecord
from schemas.events import ConfigMapRequested, SecretRequested, ServiceRequested
from schemas.events.base import Event
from schemas.resources import TaskSpec

ORDER = ("env", "svc", "ssh", "mpi", "pytorch", "tensorflow")
IMPLIES = {"mpi": ("svc", "ssh"), "pytorch": ("svc",), "tensorflow": ("svc",)}
SVC_MOUNT = "/etc/volcano"
SSH_MOUNT = "/root/.ssh"


@dataclass
class PodShape:
    """What plugins add to one pod, applied to its containers afterwards."""

    job: JobRecord
    task: TaskSpec
    index: int
    name: str
    env: list[dict[str, Any]] = field(default_factory=list)  # every container and init container
    mounts: list[dict[str, Any]] = field(default_factory=list)  # every container and init container
    ports: list[dict[str, Any]] = field(default_factory=list)  # every regular container
    volumes: list[dict[str, Any]] = field(default_factory=list)
    hostname: str = ""
    subdomain: str = ""

    def add_env(self, name: str, value: str) -> None:
        self.env.append({"name": name, "value": value})


def active(job: JobRecord) -> dict[str, dict[str, str]]:
    """The plugins in effect (implied ones included), in a fixed order, with parsed flags."""
    wanted = dict(job.manifest.spec.plugins)
    for plugin in list(wanted):
        for implied in IMPLIES.get(plugin, ()):
            wanted.setdefault(implied, [])
    return {name: _flags(wanted[name]) for name in ORDER if name in wanted}


def _flags(args: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in args:
        name, _, value = arg.lstrip("-").partition("=")
        out[name] = value if value else "true"
    return out


def _pod_name(job: JobRecord, task: str, index: int) -> str:
    return f"{job.name}-{task}-{index}"


def host_of(job: JobRecord, task: TaskSpec, index: int) -> str:
    """The DNS name a pod gets through the job's headless Service."""
    spec = task.template.spec
    return f"{spec.hostname or _pod_name(job, task.name, index)}.{spec.subdomain or job.name}"


def _hosts(job: JobRecord, task: TaskSpec) -> list[str]:
    if task.template.spec.hostname:
        return [host_of(job, task, 0)]
    return [host_of(job, task, i) for i in range(task.replicas)]


def hosts_data(job: JobRecord) -> dict[str, str]:
    """The svc plugin's hosts files and variables, per task."""
    data: dict[str, str] = {}
    for task in job.manifest.spec.tasks:
        hosts = _hosts(job, task)
        data[f"{task.name}.host"] = "\n".join(hosts)
        data[f"VC_{task.name.upper()}_HOSTS"] = ",".join(hosts)
        data[f"VC_{task.name.upper()}_NUM"] = str(len(hosts))
    return data


def owner_reference(job: JobRecord) -> dict[str, Any]:
    ref = {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "name": job.name}
    if job.manifest.metadata.uid:
        ref["uid"] = job.manifest.metadata.uid
    return {**ref, "controller": True, "blockOwnerDeletion": True}


def _labels(job: JobRecord) -> dict[str, str]:
    return {"volcano.sh/job-name": job.name, "volcano.sh/job-namespace": job.namespace}


def svc_configmap(job: JobRecord) -> ConfigMapRequested:
    return ConfigMapRequested(
        name=f"{job.namespace}/{job.name}-svc", job=job.key, data=hosts_data(job), labels=_labels(job)
    )


def job_resources(job: JobRecord) -> list[Event]:
    """What must exist before the job's pods: Service, hosts ConfigMap, SSH Secret."""
    plugins = active(job)
    out: list[Event] = []
    if "svc" in plugins:
        flags = plugins["svc"]
        spec: dict[str, Any] = {
            "clusterIP": "None",
            "selector": _labels(job),
            "ports": [{"name": "placeholder-volcano", "port": 1, "protocol": "TCP", "targetPort": 1}],
        }
        if flags.get("publish-not-ready-addresses") == "true":
            spec["publishNotReadyAddresses"] = True
        manifest = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": job.name,
                "namespace": job.namespace,
                "labels": _labels(job),
                "ownerReferences": [owner_reference(job)],
            },
            "spec": spec,
        }
        out.append(ServiceRequested(name=job.key, job=job.key, manifest=manifest))
        out.append(svc_configmap(job))
    if "ssh" in plugins:
        out.append(
            SecretRequested(
                name=f"{job.namespace}/{job.name}-ssh",
                job=job.key,
                config="StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n",
                labels=_labels(job),
            )
        )
    return out


# --- per-pod changes ----------------------------------------------------------------


def _env(shape: PodShape, flags: dict[str, str]) -> None:
    shape.add_env("VK_TASK_INDEX", str(shape.index))
    shape.add_env("VC_TASK_INDEX", str(shape.index))


def _svc(shape: PodShape, flags: dict[str, str]) -> None:
    job = shape.job
    spec = shape.task.template.spec
    shape.hostname = spec.hostname or shape.name
    shape.subdomain = spec.subdomain or job.name
    volume = f"{job.name}-svc"
    shape.volumes.append({"name": volume, "configMap": {"name": volume}})
    shape.mounts.append({"name": volume, "mountPath": SVC_MOUNT})
    for key, value in hosts_data(job).items():
        if key.startswith("VC_"):
            shape.add_env(key, value)


def _ssh(shape: PodShape, flags: dict[str, str]) -> None:
    secret = f"{shape.job.name}-ssh"
    items = [{"key": k, "path": k} for k in ("id_rsa", "id_rsa.pub", "authorized_keys", "config")]
    shape.volumes.append({"name": secret, "secret": {"secretName": secret, "defaultMode": 0o600, "items": items}})
    shape.mounts.append({"name": secret, "mountPath": flags.get("ssh-key-file-path", SSH_MOUNT)})


def _mpi(shape: PodShape, flags: dict[str, str]) -> None:
    master, worker = flags.get("master", "master"), flags.get("worker", "worker")
    port = int(flags.get("port", "22"))
    workers = shape.job.task(worker)
    if shape.task.name == master and workers is not None:
        shape.add_env("MPI_HOST", ",".join(host_of(shape.job, workers, i) for i in range(workers.replicas)))
    elif shape.task.name == worker:
        shape.ports.append({"name": "mpijob-port", "containerPort": port})


def _pytorch(shape: PodShape, flags: dict[str, str]) -> None:
    master_name, worker_name = flags.get("master", "master"), flags.get("worker", "worker")
    port = flags.get("port", "23456")
    master, worker = shape.job.task(master_name), shape.job.task(worker_name)
    if master is None or shape.task.name not in (master_name, worker_name):
        return
    world = master.replicas + (worker.replicas if worker is not None else 0)
    rank = shape.index if shape.task.name == master_name else shape.index + master.replicas
    shape.add_env("MASTER_ADDR", host_of(shape.job, master, 0))
    shape.add_env("MASTER_PORT", port)
    shape.add_env("WORLD_SIZE", str(world))
    shape.add_env("RANK", str(rank))
    shape.ports.append({"name": "pytorchjob-port", "containerPort": int(port)})


def _tensorflow(shape: PodShape, flags: dict[str, str]) -> None:
    port = flags.get("port", "2222")
    roles = {role: flags.get(role, role) for role in ("chief", "ps", "worker", "evaluator")}
    cluster: dict[str, list[str]] = {}
    for role in ("chief", "ps", "worker"):
        task = shape.job.task(roles[role])
        if task is not None and task.replicas > 0:
            cluster[role] = [f"{host_of(shape.job, task, i)}:{port}" for i in range(task.replicas)]
    mine = [role for role, name in roles.items() if name == shape.task.name]
    if not mine:
        return
    config = {"cluster": cluster, "task": {"type": mine[0], "index": shape.index}}
    shape.add_env("TF_CONFIG", json.dumps(config, separators=(",", ":")))
    shape.ports.append({"name": "tfjob-port", "containerPort": int(port)})


_SHAPERS = {"env": _env, "svc": _svc, "ssh": _ssh, "mpi": _mpi, "pytorch": _pytorch, "tensorflow": _tensorflow}


def shape_pod(shape: PodShape) -> PodShape:
    for name, flags in active(shape.job).items():
        _SHAPERS[name](shape, flags)
    return shape

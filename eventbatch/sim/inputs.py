"""Scenario entries as events: the cluster at time 0 and each workload step.

Where it sits: between the scenario file (``schemas.scenario``) and the log.
Nodes become ``NodeAdded``; queues ``QueueCreateRequested``; pods already running
become their podgroup plus ``PodRequested``/``PodCreated``/``PodBound``/
``PodStarted``, as if an earlier scheduler had placed them; workload steps
become the intents a user (or another operator: a PodGroup, a plain Pod)
would have appended at that moment (a JobTemplate, a JobFlow and a CronJob too).
"""

from __future__ import annotations

from schemas.events import (
    CronJobSubmitRequested,
    HyperNodeApplyRequested,
    JobCommandRequested,
    JobFlowSubmitRequested,
    JobSubmitRequested,
    JobTemplateSubmitRequested,
    NodeAdded,
    NodeRemoved,
    PodBound,
    PodCreated,
    PodGroupCreated,
    PodGroupPhaseChanged,
    PodGroupSubmitRequested,
    PodRequested,
    PodStarted,
    PodSubmitRequested,
    PriorityClassAdded,
    QueueCommandRequested,
    QueueCreateRequested,
)
from schemas.events.base import Event
from schemas.hypernode import HyperNode
from schemas.quantity import to_resources
from schemas.resources import (
    Command,
    Container,
    CronJob,
    Job,
    JobFlow,
    JobTemplate,
    Node,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodGroup,
    PodGroupSpec,
    PodSpec,
    Queue,
    ResourceRequirements,
    key_of,
)
from schemas.runtimeclass import runtime_class_added
from schemas.scenario import NodeEntry, RunningEntry, Scenario, Step

# What a kubelet gives every node unless the scenario says otherwise: the
# well-known labels (``kubernetes.io/hostname`` is the node's name), room for
# 110 pods (the kubelet's default ``maxPods``) and local ephemeral storage.
NODE_LABELS = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
NODE_ALLOCATABLE = {"pods": "110", "ephemeral-storage": "100Gi"}


def nodes_of(entry: NodeEntry) -> list[Node]:
    """The nodes of one scenario entry, with what a real node always carries unless the entry overrides it."""
    names = [entry.name] if entry.name else [f"{entry.prefix}{i}" for i in range(entry.count)]
    allocatable = {**NODE_ALLOCATABLE, **{k: str(v) for k, v in entry.allocatable.items()}}
    return [
        Node(
            metadata=ObjectMeta(
                name=name, labels={**NODE_LABELS, "kubernetes.io/hostname": name, **entry.labels}
            ),
            spec=NodeSpec(unschedulable=entry.unschedulable, taints=list(entry.taints)),
            status=NodeStatus(capacity=allocatable, allocatable=allocatable),
        )
        for name in names
    ]


def _namespaced(name: str) -> tuple[str, str]:
    namespace, _, short = name.rpartition("/")
    return namespace or "default", short


def running_events(entry: RunningEntry, priorities: dict[str, int]) -> list[Event]:
    """A podgroup and its pods, bound and started before the simulation begins."""
    namespace, job = _namespaced(entry.job)
    job_key = f"{namespace}/{job}"
    pg_namespace, pg_name = _namespaced(entry.podgroup or job_key)
    podgroup_key = f"{pg_namespace}/{pg_name}"
    requests = {k: str(v) for k, v in entry.requests.items()}
    priority = priorities.get(entry.priority_class_name, entry.priority)
    annotations = {"eventbatch.io/sim-duration": entry.duration} if entry.duration else {}
    events: list[Event] = [
        PodGroupCreated(
            podgroup=podgroup_key,
            job=job_key,
            manifest=PodGroup(
                metadata=ObjectMeta(name=pg_name, namespace=pg_namespace),
                spec=PodGroupSpec(
                    min_member=entry.count,
                    queue=entry.queue,
                    priority_class_name=entry.priority_class_name,
                ),
            ),
        )
    ]
    for index in range(entry.count):
        name = f"{job}-{entry.task}-{index}"
        pod = Pod(
            metadata=ObjectMeta(
                name=name,
                namespace=namespace,
                labels={"volcano.sh/job-name": job, "volcano.sh/task-spec": entry.task, **entry.labels},
                annotations={"scheduling.k8s.io/group-name": pg_name, **annotations},
            ),
            spec=PodSpec(
                containers=[Container(name=entry.task, resources=ResourceRequirements(requests=requests))],
                priority=priority,
                priority_class_name=entry.priority_class_name,
                node_name=entry.node,
            ),
        )
        pod_key = f"{namespace}/{name}"
        resources = {"pods": 1, **to_resources(requests)}
        events += [
            PodRequested(
                pod=pod_key, job=job_key, podgroup=podgroup_key, task=entry.task, index=index,
                manifest=pod, requests=resources, priority=priority,
            ),
            PodCreated(pod=pod_key, job=job_key, uid=f"preexisting-{pod_key}"),
            PodBound(pod=pod_key, job=job_key, node=entry.node, rule="preexisting"),
            PodStarted(pod=pod_key, job=job_key, node=entry.node),
        ]
    return events


def cluster_events(scenario: Scenario) -> list[Event]:
    events: list[Event] = [PriorityClassAdded(name=n, value=v) for n, v in sorted(scenario.priority_classes.items())]
    events += [runtime_class_added(rc) for rc in scenario.runtime_classes]
    for entry in scenario.nodes:
        events += [NodeAdded(node=n.metadata.name, manifest=n) for n in nodes_of(entry)]
    events += [QueueCreateRequested(queue=q.metadata.name, manifest=q) for q in scenario.queues if isinstance(q, Queue)]
    for running in scenario.running:
        events += running_events(running, scenario.priority_classes)
    for podgroup, phase in sorted(scenario.podgroup_phases.items()):
        namespace, name = _namespaced(podgroup)
        events.append(
            PodGroupPhaseChanged(podgroup=f"{namespace}/{name}", job=f"{namespace}/{name}", phase=phase, rule="scenario")
        )
    return events


def step_events(step: Step) -> list[Event]:
    events: list[Event] = []
    for manifest in step.manifests:
        if isinstance(manifest, Job):
            events.append(JobSubmitRequested(job=key_of(manifest.metadata), manifest=manifest))
        elif isinstance(manifest, Queue):
            events.append(QueueCreateRequested(queue=manifest.metadata.name, manifest=manifest))
        elif isinstance(manifest, PodGroup):
            events.append(PodGroupSubmitRequested(podgroup=key_of(manifest.metadata), manifest=manifest))
        elif isinstance(manifest, HyperNode):
            events.append(HyperNodeApplyRequested(hypernode=manifest.metadata.name, manifest=manifest))
        elif isinstance(manifest, Pod):
            events.append(PodSubmitRequested(pod=key_of(manifest.metadata), manifest=manifest))
        elif isinstance(manifest, CronJob):
            events.append(CronJobSubmitRequested(cronjob=key_of(manifest.metadata), manifest=manifest))
        elif isinstance(manifest, JobTemplate):
            events.append(JobTemplateSubmitRequested(template=key_of(manifest.metadata), manifest=manifest))
        elif isinstance(manifest, JobFlow):
            events.append(JobFlowSubmitRequested(jobflow=key_of(manifest.metadata), manifest=manifest))
        elif isinstance(manifest, Command) and manifest.target_object is not None:
            target = manifest.target_object
            if target.kind == "Queue":
                action = "open" if manifest.action == "OpenQueue" else "close"
                events.append(QueueCommandRequested(queue=target.name, action=action))
            else:
                namespace = manifest.metadata.namespace or "default"
                events.append(JobCommandRequested(job=f"{namespace}/{target.name}", command=manifest))
    if step.command is not None:
        action = step.command.action
        if step.command.queue:
            events.append(QueueCommandRequested(queue=step.command.queue, action="open" if action == "OpenQueue" else "close"))
        else:
            namespace, name = _namespaced(step.command.job)
            command = Command(
                metadata=ObjectMeta(name=f"scenario-{step.index}-{action.lower()}", namespace=namespace),
                action=action,
                target_object=OwnerReference(api_version="batch.volcano.sh/v1alpha1", kind="Job", name=name),
                reason="scenario workload",
            )
            events.append(JobCommandRequested(job=f"{namespace}/{name}", command=command))
    if step.fail is not None:
        events.append(NodeRemoved(node=step.fail.node, reason="injected failure"))
    return events

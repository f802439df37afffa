"""Typed Volcano-compatible resources: Job, Queue, Command, PodGroup, Node, Pod, CronJob.

Where it sits: the vocabulary of the whole pipeline. Manifests are loaded into
these types at the edge (``schemas.loaders``), carried inside events on the log
(``schemas.events``), folded by projections and read by handlers.

Field names follow Volcano's and Kubernetes' JSON names (camelCase) so a
Volcano manifest decodes as it is. Resource quantities stay the strings the
user wrote (``"500m"``, ``"4Gi"``) inside pod templates; the parsed integer
form lives in ``Resources`` (``schemas.quantity``) wherever the scheduler
reads it. Parts of a pod template that scheduling does not read are kept
verbatim in ``extra`` so nothing the user wrote is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import msgspec

if TYPE_CHECKING:
    from schemas.hypernode import HyperNode

# Integer resource amounts keyed by resource name: cpu and other countable
# resources in milli-units, byte-denominated ones in bytes, pods as a count.
Resources = dict[str, int]


class Base(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel", gc=False):
    """Common settings: immutable, camelCase JSON names, defaults left out on encode."""


class OwnerReference(Base, frozen=True):
    api_version: str
    kind: str
    name: str
    uid: str = ""
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Base, frozen=True):
    name: str = ""
    namespace: str = ""
    generate_name: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    owner_references: list[OwnerReference] = []
    finalizers: list[str] = []


# --- pod template: typed where scheduling reads it -------------------------


class ResourceRequirements(Base, frozen=True):
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    claims: list[dict[str, Any]] = []


class Container(Base, frozen=True):
    name: str = ""
    image: str = ""
    command: list[str] = []
    args: list[str] = []
    env: list[dict[str, Any]] = []
    ports: list[dict[str, Any]] = []
    volume_mounts: list[dict[str, Any]] = []
    resources: ResourceRequirements = ResourceRequirements()
    # Every other container field, exactly as written.
    extra: dict[str, Any] = {}


class Toleration(Base, frozen=True):
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None


class NodeSelectorRequirement(Base, frozen=True):
    key: str
    operator: str
    values: list[str] = []


class NodeSelectorTerm(Base, frozen=True):
    match_expressions: list[NodeSelectorRequirement] = []
    match_fields: list[NodeSelectorRequirement] = []


class NodeSelector(Base, frozen=True):
    node_selector_terms: list[NodeSelectorTerm] = []


class NodeAffinity(Base, frozen=True):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[dict[str, Any]] = []


class Affinity(Base, frozen=True):
    node_affinity: NodeAffinity | None = None
    pod_affinity: dict[str, Any] | None = None
    pod_anti_affinity: dict[str, Any] | None = None


class PodSpec(Base, frozen=True):
    containers: list[Container] = []
    init_containers: list[Container] = []
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    affinity: Affinity | None = None
    priority_class_name: str = ""
    priority: int | None = None
    runtime_class_name: str = ""
    scheduler_name: str = ""
    restart_policy: str = ""
    node_name: str = ""
    hostname: str = ""
    subdomain: str = ""
    volumes: list[dict[str, Any]] = []
    # Every other pod spec field, exactly as written.
    extra: dict[str, Any] = {}


class PodTemplateSpec(Base, frozen=True):
    metadata: ObjectMeta = ObjectMeta()
    spec: PodSpec = PodSpec()


# --- batch.volcano.sh/v1alpha1 Job ----------------------------------------


class LifecyclePolicy(Base, frozen=True):
    action: str = ""
    event: str = ""
    events: list[str] = []
    exit_code: int | None = None
    timeout: str | None = None  # a Go duration such as "10m" or "90s"


class DependsOn(Base, frozen=True):
    name: list[str] = []
    iteration: str = "all"  # "any" | "all"


class TaskSpec(Base, frozen=True):
    name: str = ""
    replicas: int = 0
    min_available: int | None = None
    template: PodTemplateSpec = PodTemplateSpec()
    policies: list[LifecyclePolicy] = []
    depends_on: DependsOn | None = None
    max_retry: int = 0
    topology_policy: str = ""
    # Volcano's network-topology partitioning of a task, carried as written.
    partition_policy: dict[str, Any] | None = None


class NetworkTopologySpec(Base, frozen=True):
    mode: str = "hard"  # "hard" | "soft"
    highest_tier_allowed: int | None = None


class JobSpec(Base, frozen=True):
    scheduler_name: str = ""
    min_available: int = 0
    min_success: int | None = None
    tasks: list[TaskSpec] = []
    policies: list[LifecyclePolicy] = []
    plugins: dict[str, list[str]] = {}
    queue: str = ""
    max_retry: int = 0
    ttl_seconds_after_finished: int | None = None
    priority_class_name: str = ""
    network_topology: NetworkTopologySpec | None = None
    running_estimate: str | None = None
    volumes: list[dict[str, Any]] = []


class JobState(Base, frozen=True):
    phase: str = ""
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class TaskState(Base, frozen=True):
    phase: dict[str, int] = {}


class Condition(Base, frozen=True):
    status: str
    last_transition_time: str | None = None
    type: str = ""
    reason: str = ""
    message: str = ""


class JobStatus(Base, frozen=True):
    state: JobState = JobState()
    min_available: int = 0
    task_status_count: dict[str, TaskState] = {}
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0
    unknown: int = 0
    version: int = 0
    retry_count: int = 0
    running_duration: str | None = None
    controlled_resources: dict[str, str] = {}
    conditions: list[Condition] = []


class Job(Base, frozen=True):
    api_version: str = "batch.volcano.sh/v1alpha1"
    kind: str = "Job"
    metadata: ObjectMeta = ObjectMeta()
    spec: JobSpec = JobSpec()
    status: JobStatus | None = None


# --- scheduling.volcano.sh/v1beta1 Queue ----------------------------------


class Guarantee(Base, frozen=True):
    resource: dict[str, str] = {}


class QueueSpec(Base, frozen=True):
    weight: int = 1
    capability: dict[str, str] = {}
    reclaimable: bool | None = None
    guarantee: Guarantee = Guarantee()
    deserved: dict[str, str] = {}
    parent: str = ""
    priority: int = 0
    type: str = ""
    affinity: dict[str, Any] | None = None
    extend_clusters: list[dict[str, Any]] = []
    dequeue_strategy: str = ""  # Volcano: "fifo" | "traverse"


class QueueStatus(Base, frozen=True):
    state: str = ""
    pending: int = 0
    running: int = 0
    unknown: int = 0
    inqueue: int = 0
    completed: int = 0
    allocated: dict[str, str] = {}
    reservation: dict[str, Any] = {}


class Queue(Base, frozen=True):
    api_version: str = "scheduling.volcano.sh/v1beta1"
    kind: str = "Queue"
    metadata: ObjectMeta = ObjectMeta()
    spec: QueueSpec = QueueSpec()
    status: QueueStatus | None = None


# --- bus.volcano.sh/v1alpha1 Command --------------------------------------


class Command(Base, frozen=True):
    """A request to act on a Job or a Queue, as Volcano's ``bus.volcano.sh`` Command.

    ``target_object`` is Volcano's ``TargetObject``, written ``target`` in
    JSON: a Kubernetes owner reference (apiVersion, kind, name, uid,
    controller, blockOwnerDeletion). It has no namespace: a Job is looked up
    in the Command's own namespace, as Volcano's job controller does.
    """

    api_version: str = "bus.volcano.sh/v1alpha1"
    kind: str = "Command"
    metadata: ObjectMeta = ObjectMeta()
    action: str = ""
    target_object: OwnerReference | None = msgspec.field(default=None, name="target")
    reason: str = ""
    message: str = ""


# --- scheduling.volcano.sh/v1beta1 PodGroup --------------------------------


class PodGroupSpec(Base, frozen=True):
    min_member: int = 0
    min_task_member: dict[str, int] = {}
    queue: str = "default"
    priority_class_name: str = ""
    min_resources: dict[str, str] = {}
    network_topology: NetworkTopologySpec | None = None
    sub_group_policy: list[dict[str, Any]] = []


class PodGroupStatus(Base, frozen=True):
    phase: str = "Pending"
    conditions: list[Condition] = []
    running: int = 0
    succeeded: int = 0
    failed: int = 0


class PodGroup(Base, frozen=True):
    api_version: str = "scheduling.volcano.sh/v1beta1"
    kind: str = "PodGroup"
    metadata: ObjectMeta = ObjectMeta()
    spec: PodGroupSpec = PodGroupSpec()
    status: PodGroupStatus | None = None


# --- core/v1 Node and Pod -------------------------------------------------


class Taint(Base, frozen=True):
    key: str
    effect: str
    value: str = ""


class NodeSpec(Base, frozen=True):
    unschedulable: bool = False
    taints: list[Taint] = []


class NodeStatus(Base, frozen=True):
    capacity: dict[str, str] = {}
    allocatable: dict[str, str] = {}
    conditions: list[dict[str, Any]] = []


class Node(Base, frozen=True):
    api_version: str = "v1"
    kind: str = "Node"
    metadata: ObjectMeta = ObjectMeta()
    spec: NodeSpec = NodeSpec()
    status: NodeStatus = NodeStatus()


class PodStatus(Base, frozen=True):
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    host_ip: str = ""
    pod_ip: str = ""
    start_time: str | None = None
    container_statuses: list[dict[str, Any]] = []


class Pod(Base, frozen=True):
    api_version: str = "v1"
    kind: str = "Pod"
    metadata: ObjectMeta = ObjectMeta()
    spec: PodSpec = PodSpec()
    status: PodStatus | None = None


# --- batch.volcano.sh/v1alpha1 CronJob (checked and defaulted in ``schemas.cronjob``) ---


class JobTemplateSpec(Base, frozen=True):
    metadata: ObjectMeta = ObjectMeta()
    spec: JobSpec = JobSpec()


class CronJobSpec(Base, frozen=True):
    schedule: str = ""
    job_template: JobTemplateSpec = JobTemplateSpec()
    time_zone: str | None = None
    starting_deadline_seconds: int | None = None
    concurrency_policy: str = ""
    suspend: bool | None = None
    successful_jobs_history_limit: int | None = None
    failed_jobs_history_limit: int | None = None


class CronJobStatus(Base, frozen=True):
    active: list[dict[str, Any]] = []
    last_schedule_time: str | None = None
    last_successful_time: str | None = None


class CronJob(Base, frozen=True):
    api_version: str = "batch.volcano.sh/v1alpha1"
    kind: str = "CronJob"
    metadata: ObjectMeta = ObjectMeta()
    spec: CronJobSpec = CronJobSpec()
    status: CronJobStatus | None = None


# --- flow.volcano.sh/v1alpha1 JobFlow and JobTemplate (checked and defaulted in ``schemas.jobflow``) ---


class JobTemplate(Base, frozen=True):
    """A Job spec kept under a name, for JobFlows to make Jobs from."""

    api_version: str = "flow.volcano.sh/v1alpha1"
    kind: str = "JobTemplate"
    metadata: ObjectMeta = ObjectMeta()
    spec: JobSpec = JobSpec()
    status: dict[str, Any] | None = None


class FlowHttpHeader(Base, frozen=True):
    name: str = ""
    value: str = ""


class FlowHttpGet(Base, frozen=True):
    task_name: str = ""
    path: str = ""
    port: int = 0
    http_header: FlowHttpHeader | None = None


class FlowTcpSocket(Base, frozen=True):
    port: int
    task_name: str = ""


class FlowTaskStatus(Base, frozen=True):
    task_name: str = ""
    phase: str = ""


class FlowProbe(Base, frozen=True):
    http_get_list: list[FlowHttpGet] = []
    tcp_socket_list: list[FlowTcpSocket] = []
    task_status_list: list[FlowTaskStatus] = []


class FlowDependsOn(Base, frozen=True):
    targets: list[str] = []
    probe: FlowProbe | None = None


class FlowPatch(Base, frozen=True):
    job_spec: JobSpec | None = None


class Flow(Base, frozen=True):
    """One step of a JobFlow: the JobTemplate ``name`` and the steps it waits for."""

    name: str
    depends_on: FlowDependsOn | None = None
    patch: FlowPatch | None = None


class JobFlowSpec(Base, frozen=True):
    flows: list[Flow] = []
    job_retain_policy: str = ""  # "retain" | "delete" ("" keeps the jobs, as retain)


class JobFlow(Base, frozen=True):
    api_version: str = "flow.volcano.sh/v1alpha1"
    kind: str = "JobFlow"
    metadata: ObjectMeta = ObjectMeta()
    spec: JobFlowSpec = JobFlowSpec()
    status: dict[str, Any] | None = None


# A top-level object a user submits: what a manifest file holds (``schemas.loaders``).
# Kinds kept in a module of their own (which imports this one) are named as strings.
Manifest = Union[Job | Queue | Command | PodGroup | Node | Pod | CronJob | JobFlow | JobTemplate, "HyperNode"]


def key_of(meta: ObjectMeta) -> str:
    """The log key of a namespaced object: ``namespace/name``."""
    return f"{meta.namespace or 'default'}/{meta.name}"

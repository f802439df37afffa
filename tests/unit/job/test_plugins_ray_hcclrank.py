"""The ray and hcclrank job plugins: what they add to a job's pods and Services, as Volcano's do.

Volcano's behaviour is read from ``pkg/controllers/job/plugins/distributed-framework/ray/ray.go`` and
``.../hcclrank/hcclrank.go`` (v1.15): the ray head container's command, its three ports and the
``<job>-head-svc`` Service; the worker container's ``ray start --address``; the ``hccl/rankIndex``
annotation (a rank already annotated is kept, a ``RANK`` variable wins, else master index, or
master replicas + worker index).
"""

from __future__ import annotations

import pytest

from schemas.events import JobDeleteRequested, PodRequested, ServiceDeletionRequested, ServiceRequested
from schemas.loaders import ManifestError
from tests.unit.job.driver import Loop, job_from_yaml, of

RAY = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: rc, namespace: ml, uid: 7a1b}
spec:
  minAvailable: 3
  plugins: {ray: [PLUGIN_ARGS], svc: []}
  tasks:
  - name: head
    replicas: 1
    template: {spec: {containers: [{name: head, image: ray, ports: [{name: mine, containerPort: 8265}]}, {name: side, image: x}]}}
  - name: worker
    replicas: 2
    template: {spec: {containers: [{name: worker, image: ray}]}}
"""


def _pods(text: str, key: str) -> tuple[dict[str, PodRequested], list]:
    loop = Loop()
    submitted = loop.submit(job_from_yaml(text))
    return {p.pod: p for p in of(loop.enqueue(key), PodRequested)}, submitted


def test_ray_starts_the_head_and_points_the_workers_at_it() -> None:
    pods, submitted = _pods(RAY.replace("PLUGIN_ARGS", ""), "ml/rc")
    head = pods["ml/rc-head-0"].manifest.spec.containers
    assert head[0].command == [
        "sh", "-c",
        "ray start --head --block --dashboard-host=0.0.0.0 --port=6379 --dashboard-port=8265 "
        "--ray-client-server-port=10001",
    ]
    # a port the container already opens is not opened twice
    assert head[0].ports == [
        {"name": "mine", "containerPort": 8265},
        {"name": "gcs", "containerPort": 6379},
        {"name": "client-server", "containerPort": 10001},
    ]
    assert (head[1].command, head[1].ports) == ([], [])  # only the named container changes
    for i in (0, 1):
        worker = pods[f"ml/rc-worker-{i}"].manifest.spec.containers[0]
        assert worker.command == ["sh", "-c", "ray start --block --address=rc-head-0.rc:6379"]
        assert worker.ports == []
    services = {s.name: s.manifest for s in of(submitted, ServiceRequested)}
    assert set(services) == {"ml/rc", "ml/rc-head-svc"}
    svc = services["ml/rc-head-svc"]
    assert svc["spec"]["selector"] == {
        "volcano.sh/job-name": "rc", "volcano.sh/job-namespace": "ml", "volcano.sh/task-spec": "head"}
    assert "clusterIP" not in svc["spec"]  # a ClusterIP Service, not headless like svc's
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("gcs", 6379, "gcs"), ("dashboard", 8265, "dashboard"), ("client-server", 10001, "client-server")]
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "7a1b"


def test_ray_arguments_rename_tasks_containers_and_ports() -> None:
    text = RAY.replace(
        "PLUGIN_ARGS",
        '"--head=boss", "--headContainer=main", "--worker=hand", "--workerContainer=w", '
        '"--port=7000", "--dashboardPort=7001", "--clientPort=7002"',
    ).replace("name: head\n", "name: boss\n").replace("name: worker\n", "name: hand\n")
    text = text.replace("{name: head, image", "{name: main, image").replace("{name: worker, image", "{name: w, image")
    pods, submitted = _pods(text, "ml/rc")
    main = pods["ml/rc-boss-0"].manifest.spec.containers[0]
    assert main.command[2].endswith("--port=7000 --dashboard-port=7001 --ray-client-server-port=7002")
    assert [p["containerPort"] for p in main.ports] == [8265, 7000, 7001, 7002]
    assert pods["ml/rc-hand-1"].manifest.spec.containers[0].command[2] == "ray start --block --address=rc-boss-0.rc:7000"
    (svc,) = [s for s in of(submitted, ServiceRequested) if s.name == "ml/rc-head-svc"]
    assert svc.manifest["spec"]["selector"]["volcano.sh/task-spec"] == "boss"


def test_ray_head_service_goes_with_the_job() -> None:
    loop = Loop()
    loop.submit(job_from_yaml(RAY.replace("PLUGIN_ARGS", "")))
    out = loop.feed(JobDeleteRequested(job="ml/rc"))
    assert sorted(s.name for s in of(out, ServiceDeletionRequested)) == ["ml/rc", "ml/rc-head-svc"]


@pytest.mark.parametrize(
    ("plugins", "reason"),
    [
        ("{ray: []}", "the ray head task 'head' is not one of the job's tasks"),
        ('{ray: ["--head=main", "--port=http"]}', "--port must be a port number (1-65535), got 'http'"),
    ],
)
def test_a_ray_job_without_its_head_task_or_with_a_bad_port_is_refused(plugins: str, reason: str) -> None:
    text = f"""
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: rc}}
spec:
  plugins: {plugins}
  tasks:
  - name: main
    replicas: 1
    template: {{spec: {{containers: [{{name: c, image: ray}}]}}}}
"""
    with pytest.raises(ManifestError) as refused:
        job_from_yaml(text)
    assert refused.value.path == "spec.plugins.ray"
    assert reason in refused.value.reason


HCCL = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: npu}
spec:
  plugins: {hcclrank: [PLUGIN_ARGS]}
  tasks:
  - name: chief
    replicas: 2
    template: {spec: {containers: [{name: c, image: x}]}}
  - name: member
    replicas: 3
    template: {spec: {containers: [{name: c, image: x}]}}
  - name: other
    replicas: 1
    template:
      metadata: {annotations: {hccl/rankIndex: "9"}}
      spec: {containers: [{name: c, image: x}]}
"""


def _ranks(pods: dict[str, PodRequested]) -> dict[str, str | None]:
    return {name: p.manifest.metadata.annotations.get("hccl/rankIndex") for name, p in sorted(pods.items())}


def test_hcclrank_numbers_masters_then_workers() -> None:
    pods, _ = _pods(HCCL.replace("PLUGIN_ARGS", '"--master=chief", "--worker=member"'), "default/npu")
    assert _ranks(pods) == {
        "default/npu-chief-0": "0", "default/npu-chief-1": "1",
        "default/npu-member-0": "2", "default/npu-member-1": "3", "default/npu-member-2": "4",
        "default/npu-other-0": "9",  # annotated in the template: kept
    }


def test_hcclrank_with_default_task_names_leaves_other_tasks_alone() -> None:
    pods, _ = _pods(HCCL.replace("PLUGIN_ARGS", ""), "default/npu")
    assert _ranks(pods) == {
        "default/npu-chief-0": None, "default/npu-chief-1": None,
        "default/npu-member-0": None, "default/npu-member-1": None, "default/npu-member-2": None,
        "default/npu-other-0": "9",
    }


def test_hcclrank_takes_the_rank_variable_pytorch_sets() -> None:
    text = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: pt}
spec:
  plugins: {pytorch: ["--master=m", "--worker=w"], hcclrank: []}
  tasks:
  - name: m
    replicas: 1
    template: {spec: {containers: [{name: c, image: x}]}}
  - name: w
    replicas: 2
    template: {spec: {containers: [{name: c, image: x, env: [{name: RANK, value: "40"}]}]}}
"""
    pods, _ = _pods(text, "default/pt")
    # pytorch's RANK for the master; the worker's own RANK comes first in its container's env
    assert _ranks(pods) == {"default/pt-m-0": "0", "default/pt-w-0": "40", "default/pt-w-1": "40"}

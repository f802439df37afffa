"""Whole-job scenarios from Volcano manifests, with the scheduler's and cluster's answers scripted."""

from __future__ import annotations

import json

from schemas.events import (
    ConfigMapRequested,
    PodDeleted,
    PodGroupCreated,
    PodReady,
    PodRequested,
    PodStarted,
    SecretRequested,
    ServiceRequested,
    TimerCancelled,
    TimerScheduled,
)
from tests.unit.job.driver import Loop, deleted, encoded, job_from_yaml, of, phases, requested

MPI = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata:
  name: lm-mpi
spec:
  minAvailable: 1
  plugins:
    mpi: ["--master=mpimaster", "--worker=mpiworker", "--port=22"]
  policies:
  - event: PodEvicted
    action: RestartJob
  tasks:
  - name: mpimaster
    replicas: 1
    policies:
    - event: TaskCompleted
      action: CompleteJob
    template:
      spec:
        restartPolicy: OnFailure
        containers:
        - name: mpimaster
          image: volcanosh/example-mpi:0.0.3
          command: ["/bin/sh", "-c", "mpiexec --allow-run-as-root --host ${MPI_HOST} -np 2 mpi_hello_world"]
          resources: {requests: {cpu: 500m}}
  - name: mpiworker
    replicas: 2
    dependsOn:
      name: [mpimaster]
    template:
      spec:
        restartPolicy: OnFailure
        containers:
        - name: mpiworker
          image: volcanosh/example-mpi:0.0.3
          command: ["/bin/sh", "-c", "/usr/sbin/sshd -D"]
          resources: {requests: {cpu: "1", memory: 1Gi}}
"""


def _env(request: PodRequested) -> dict[str, str]:
    return {e["name"]: e["value"] for e in request.manifest.spec.containers[0].env}


def test_mpi_job_launcher_then_workers_then_completes():
    loop = Loop()
    submitted = loop.submit(job_from_yaml(MPI))
    assert phases(submitted) == ["Pending"]
    (group,) = of(submitted, PodGroupCreated)
    assert group.manifest.spec.min_member == 1
    assert group.min_resources == {"cpu": 500, "pods": 1}  # the launcher alone is the minimum
    assert group.manifest.metadata.annotations == {"eventbatch.io/dependent-tasks": "mpiworker"}
    assert [s.name for s in of(submitted, ServiceRequested)] == ["default/lm-mpi"]
    assert [s.name for s in of(submitted, SecretRequested)] == ["default/lm-mpi-ssh"]
    assert requested(submitted) == []  # nothing before the queue admits the PodGroup

    enqueued = loop.enqueue("default/lm-mpi")
    (launcher,) = of(enqueued, PodRequested)
    assert launcher.pod == "default/lm-mpi-mpimaster-0"
    assert _env(launcher)["MPI_HOST"] == "lm-mpi-mpiworker-0.lm-mpi,lm-mpi-mpiworker-1.lm-mpi"
    mounts = {m["mountPath"] for m in launcher.manifest.spec.containers[0].volume_mounts}
    assert mounts == {"/etc/volcano", "/root/.ssh"}

    running = loop.feed(PodStarted(pod=launcher.pod, node="n1"))
    assert phases(running) == ["Running"]
    assert requested(running) == []  # workers wait until the launcher is Ready
    workers = loop.feed(PodReady(pod=launcher.pod))
    assert requested(workers) == ["default/lm-mpi-mpiworker-0", "default/lm-mpi-mpiworker-1"]
    assert of(workers, PodRequested)[0].manifest.spec.containers[0].ports == [
        {"name": "mpijob-port", "containerPort": 22}
    ]
    for pod in requested(workers):
        loop.run(pod)

    done = loop.succeed(launcher.pod)
    assert phases(done) == ["Completing"]
    assert sorted(deleted(done)) == requested(workers)
    final = loop.delete_requested(done)
    assert phases(final) == ["Completed"]
    status = loop.status("default/lm-mpi")
    assert (status.state.phase, status.succeeded, status.running, status.terminating) == ("Completed", 1, 0, 0)
    assert status.controlled_resources == {"plugin-mpi": "mpi", "plugin-ssh": "ssh", "plugin-svc": "svc"}


PYTORCH = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata:
  name: pytorch
spec:
  minAvailable: 3
  maxRetry: 3
  plugins:
    pytorch: ["--master=master", "--worker=worker", "--port=23456"]
  policies:
  - exitCode: 3
    action: RestartJob
  tasks:
  - name: master
    replicas: 1
    template:
      spec:
        restartPolicy: Never
        containers:
        - {name: master, image: pytorch-mnist, resources: {requests: {cpu: "2", nvidia.com/gpu: "1"}}}
  - name: worker
    replicas: 2
    template:
      spec:
        restartPolicy: Never
        containers:
        - {name: worker, image: pytorch-mnist, resources: {requests: {cpu: "2", nvidia.com/gpu: "1"}}}
"""


def _pytorch_round(loop: Loop) -> list[str]:
    pods = [p for p in loop.job("default/pytorch").pods if not loop.job("default/pytorch").pods[p].terminating]
    for pod in pods:
        loop.run(pod)
    return pods


def test_pytorch_exit_code_3_restarts_the_job_until_max_retry():
    loop = Loop()
    submitted = loop.submit(job_from_yaml(PYTORCH))
    assert of(submitted, PodGroupCreated)[0].min_resources == {"cpu": 6000, "nvidia.com/gpu": 3000, "pods": 3}
    created = loop.enqueue("default/pytorch")
    ranks = {r.pod: (_env(r)["RANK"], _env(r)["WORLD_SIZE"], _env(r)["MASTER_ADDR"]) for r in of(created, PodRequested)}
    assert ranks == {
        "default/pytorch-master-0": ("0", "3", "pytorch-master-0.pytorch"),
        "default/pytorch-worker-0": ("1", "3", "pytorch-master-0.pytorch"),
        "default/pytorch-worker-1": ("2", "3", "pytorch-master-0.pytorch"),
    }
    for attempt in (1, 2):
        _pytorch_round(loop)
        assert loop.phase("default/pytorch") == "Running"
        out = loop.fail("default/pytorch-worker-1", exit_code=3)
        assert phases(out) == ["Restarting"]
        back = loop.delete_requested(out)
        assert phases(back) == ["Pending"]
        assert len(requested(back)) == 3
        assert loop.job("default/pytorch").retry_count == attempt
        assert {p.manifest.metadata.labels["volcano.sh/job-version"] for p in of(back, PodRequested)} == {str(attempt)}

    _pytorch_round(loop)
    out = loop.fail("default/pytorch-worker-1", exit_code=3)
    assert phases(out) == ["Restarting", "Failed"]
    status = loop.status("default/pytorch")
    assert (status.state.phase, status.retry_count, status.state.reason) == ("Failed", 3, "MaxRetryExceeded")
    assert [c.status for c in status.conditions][-2:] == ["Restarting", "Failed"]


SUSPENDABLE = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: etl}
spec:
  minAvailable: 1
  tasks:
  - name: step
    replicas: 3
    template:
      spec:
        restartPolicy: Never
        containers: [{name: step, image: etl, resources: {requests: {cpu: "1"}}}]
"""


def test_suspend_and_resume_keep_succeeded_pods():
    loop = Loop()
    loop.submit(job_from_yaml(SUSPENDABLE))
    pods = requested(loop.enqueue("default/etl"))
    for pod in pods:
        loop.run(pod)
    loop.succeed(pods[0])

    suspended = loop.command("AbortJob", "etl")
    assert phases(suspended) == ["Aborting"]
    assert deleted(suspended) == pods[1:]
    assert phases(loop.delete_requested(suspended)) == ["Aborted"]
    assert loop.status("default/etl").succeeded == 1

    resumed = loop.command("ResumeJob", "etl")
    # The kept succeeded pod already meets minAvailable 1, so the job runs again at once.
    assert phases(resumed) == ["Restarting", "Pending", "Running"]
    assert deleted(resumed) == []
    assert requested(resumed) == pods[1:]  # the succeeded pod is not run again
    for pod in pods[1:]:
        loop.run(pod)
        loop.succeed(pod)
    status = loop.status("default/etl")
    assert (status.state.phase, status.succeeded, status.retry_count) == ("Completed", 3, 1)


SPARK = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: spark-pi}
spec:
  minAvailable: 1
  plugins: {svc: [], env: []}
  tasks:
  - name: driver
    replicas: 1
    template:
      spec:
        restartPolicy: Never
        containers: [{name: driver, image: spark, resources: {requests: {cpu: "1", memory: 2Gi}}}]
  - name: executor
    replicas: 2
    dependsOn: {name: [driver], iteration: all}
    template:
      spec:
        restartPolicy: Never
        containers: [{name: executor, image: spark, resources: {requests: {cpu: "2", memory: 4Gi}}}]
"""


def test_spark_executors_wait_for_the_driver():
    loop = Loop()
    submitted = loop.submit(job_from_yaml(SPARK))
    hosts = of(submitted, ConfigMapRequested)[0].data
    assert hosts["VC_EXECUTOR_HOSTS"] == "spark-pi-executor-0.spark-pi,spark-pi-executor-1.spark-pi"
    (driver,) = requested(loop.enqueue("default/spark-pi"))
    assert requested(loop.feed(PodStarted(pod=driver, node="n1"))) == []  # running, not Ready yet
    execs = loop.feed(PodReady(pod=driver))
    assert requested(execs) == ["default/spark-pi-executor-0", "default/spark-pi-executor-1"]
    assert _env(of(execs, PodRequested)[1])["VK_TASK_INDEX"] == "1"
    assert of(execs, PodRequested)[1].manifest.spec.hostname == "spark-pi-executor-1"
    for pod in requested(execs):
        loop.run(pod)
        loop.succeed(pod)
    assert phases(loop.succeed(driver)) == ["Completed"]


PENDING_TIMEOUT = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: tf}
spec:
  minAvailable: 3
  tasks:
  - name: ps
    replicas: 1
    template:
      spec:
        restartPolicy: Never
        containers: [{name: ps, image: tf, resources: {requests: {cpu: "1"}}}]
  - name: worker
    replicas: 2
    policies:
    - event: PodPending
      action: RestartTask
      timeout: 5m
    template:
      spec:
        restartPolicy: Never
        containers: [{name: worker, image: tf, resources: {requests: {cpu: "1"}}}]
"""


def test_pod_pending_timeout_restarts_only_that_task():
    loop = Loop()
    loop.submit(job_from_yaml(PENDING_TIMEOUT))
    created = loop.enqueue("default/tf")
    timers = of(created, TimerScheduled)
    assert [t.timer.split("|")[2] for t in timers] == ["tf-worker-0", "tf-worker-1"]
    loop.run("default/tf-ps-0")
    started = loop.run("default/tf-worker-0")
    assert [c.timer for c in of(started, TimerCancelled)] == [timers[0].timer]

    fired = loop.fire(timers[1])
    assert phases(fired) == ["Restarting"]
    assert sorted(deleted(fired)) == ["default/tf-worker-0", "default/tf-worker-1"]  # ps keeps running
    back = loop.delete_requested(fired)
    assert phases(back) == ["Pending"]
    assert requested(back) == ["default/tf-worker-0", "default/tf-worker-1"]
    assert len(of(back, TimerScheduled)) == 2
    for pod in requested(back):
        loop.run(pod)
    assert loop.phase("default/tf") == "Running"
    assert loop.job("default/tf").task_retries == {"worker": 1}


def _scripted_run() -> list[bytes]:
    loop = Loop()
    loop.submit(job_from_yaml(PYTORCH))
    loop.enqueue("default/pytorch")
    _pytorch_round(loop)
    out = loop.fail("default/pytorch-worker-1", exit_code=3)
    loop.delete_requested(out)
    _pytorch_round(loop)
    for pod in list(loop.job("default/pytorch").pods):
        loop.succeed(pod)
    return encoded(e.payload for e in loop.decisions())


def test_the_same_log_yields_the_same_decisions():
    first, second = _scripted_run(), _scripted_run()
    assert first == second
    assert len(first) > 10
    assert json.loads(first[-1])["phase"] == "Completed"


def test_replaying_the_inputs_reproduces_every_recorded_decision():
    loop = Loop()
    loop.submit(job_from_yaml(MPI))
    loop.enqueue("default/lm-mpi")
    loop.run("default/lm-mpi-mpimaster-0")
    loop.feed(PodDeleted(pod="default/lm-mpi-mpimaster-0"))
    recorded = loop.log
    replay = Loop()
    for env in recorded:
        if env.causation is None:
            replay.now = env.recorded_at - 1000
            replay.feed(env.payload)
    assert [(e.type, e.causation, encoded([e.payload])) for e in replay.log] == [
        (e.type, e.causation, encoded([e.payload])) for e in recorded
    ]

"""Loading Volcano manifests from YAML and JSON: kinds, documents, errors, round trips."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from schemas.decode import container_to_dict, pod_spec_to_dict, to_manifest
from schemas.loaders import ManifestError, decode_manifest, load_file, load_manifests
from schemas.resources import Command, Job, PodGroup, Queue
from tests.unit.schemas import examples


def test_mpi_job_loads_with_every_field_typed():
    (job,) = load_manifests(examples.MPI_JOB)
    assert isinstance(job, Job)
    assert job.metadata.name == "lm-mpi-job"
    assert job.metadata.labels == {"volcano.sh/job-type": "MPI"}
    assert [t.name for t in job.spec.tasks] == ["mpimaster", "mpiworker"]
    master = job.spec.tasks[0].template.spec.containers[0]
    assert master.resources.requests == {"cpu": "500m"}
    assert master.resources.limits == {"cpu": "1"}, "a YAML number quantity becomes its string"
    assert master.extra == {"workingDir": "/home"}
    assert job.spec.tasks[0].policies[0].event == "TaskCompleted"


def test_pytorch_job_policies_and_exit_codes():
    (job,) = load_manifests(examples.PYTORCH_JOB)
    policies = job.spec.policies
    assert policies[0].events == ["PodEvicted", "PodFailed"] and policies[0].timeout == "10m"
    assert [(p.exit_code, p.action) for p in policies[1:]] == [(137, "RestartTask"), (3, "AbortJob")]
    assert job.metadata.namespace == "ml"
    assert job.spec.tasks[1].template.spec.containers[0].resources.limits == {"nvidia.com/gpu": "1"}


def test_spark_job_dependencies():
    (job,) = load_manifests(examples.SPARK_JOB)
    deps = [(t.name, t.depends_on.name if t.depends_on else None) for t in job.spec.tasks]
    assert deps == [("driver", None), ("executor", ["driver"]), ("reporter", ["driver", "executor"])]
    assert job.spec.tasks[2].depends_on.iteration == "any"
    assert job.spec.tasks[1].depends_on.iteration == "all"
    assert job.spec.tasks[0].template.spec.extra == {"serviceAccountName": "spark"}


def test_queue_command_and_pod_group():
    (queue,) = load_manifests(examples.QUEUE)
    assert isinstance(queue, Queue)
    assert queue.spec.capability == {"cpu": "64", "memory": "256Gi", "nvidia.com/gpu": "8"}
    assert queue.spec.guarantee.resource == {"cpu": "8", "memory": "32Gi"}
    assert queue.spec.reclaimable is False
    (command,) = load_manifests(examples.COMMAND)
    assert isinstance(command, Command)
    assert (command.action, command.target_object.kind, command.target_object.name) == ("AbortJob", "Job", "lm-mpi-job")
    (group,) = load_manifests(examples.POD_GROUP)
    assert isinstance(group, PodGroup)
    assert group.spec.min_task_member == {"mpimaster": 1, "mpiworker": 2}


@pytest.mark.parametrize(
    ("api_version", "kind", "cls"),
    [
        ("batch.volcano.sh/v1alpha1", "Job", Job),
        ("batch.eventbatch.io/v1alpha1", "Job", Job),
        ("scheduling.volcano.sh/v1beta1", "Queue", Queue),
        ("scheduling.eventbatch.io/v1beta1", "Queue", Queue),
        ("scheduling.volcano.sh/v1beta1", "PodGroup", PodGroup),
        ("scheduling.eventbatch.io/v1beta1", "PodGroup", PodGroup),
        ("bus.volcano.sh/v1alpha1", "Command", Command),
        ("bus.eventbatch.io/v1alpha1", "Command", Command),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_accepted_api_version(api_version, kind, cls):
    text = {
        Job: examples.MPI_JOB,
        Queue: examples.QUEUE,
        PodGroup: examples.POD_GROUP,
        Command: examples.COMMAND,
    }[cls]
    doc = yaml.safe_load(text)
    doc["apiVersion"] = api_version
    (obj,) = load_manifests(yaml.safe_dump(doc))
    assert type(obj) is cls
    assert obj.api_version == api_version


def test_multi_document_yaml_keeps_order_and_skips_empty_documents():
    text = "---\n" + examples.QUEUE + "---\n---\n# only a comment\n---\n" + examples.MPI_JOB + "---\n"
    objs = load_manifests(text)
    assert [type(o).__name__ for o in objs] == ["Queue", "Job"]


def test_empty_input_is_no_manifests():
    assert load_manifests("") == []
    assert load_manifests("---\n---\n") == []


def test_json_object_array_and_list_kind():
    job = yaml.safe_load(examples.MPI_JOB)
    queue = yaml.safe_load(examples.QUEUE)
    (one,) = load_manifests(json.dumps(job))
    assert isinstance(one, Job)
    assert [type(o) for o in load_manifests(json.dumps([queue, job]))] == [Queue, Job]
    listed = {"apiVersion": "v1", "kind": "List", "items": [queue, job]}
    assert [type(o) for o in load_manifests(yaml.safe_dump(listed))] == [Queue, Job]


def test_json_and_yaml_give_the_same_object():
    doc = yaml.safe_load(examples.PYTORCH_JOB)
    assert load_manifests(json.dumps(doc, indent="\t")) == load_manifests(examples.PYTORCH_JOB)


def test_load_file_names_the_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(examples.QUEUE + "---\n" + examples.MPI_JOB.replace("replicas: 2", "replicas: -2"))
    with pytest.raises(ManifestError) as info:
        load_file(path)
    err = info.value
    assert (err.source, err.document, err.path) == (str(path), 2, "spec.tasks[1].replicas")
    assert str(err) == f"{path} document 2 (Job default/lm-mpi-job): spec.tasks[1].replicas: must be >= 0"
    assert [type(o) for o in load_file(tmp_path / "job.yaml", admission=False)] == [Queue, Job]


# --- pod templates round-trip -----------------------------------------------

TEMPLATE_WITH_EVERYTHING = {
    "metadata": {"labels": {"app": "trainer"}, "annotations": {"sidecar.istio.io/inject": "false"}},
    "spec": {
        "serviceAccountName": "trainer",
        "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
        "hostNetwork": False,
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
        "imagePullSecrets": [{"name": "registry"}],
        "overhead": {"cpu": "250m"},
        "restartPolicy": "Never",
        "nodeSelector": {"accelerator": "a100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "imagenet"}}],
        "initContainers": [
            {"name": "fetch", "image": "busybox:1.36", "restartPolicy": "Always", "command": ["sh", "-c", "sleep 1"]}
        ],
        "containers": [
            {
                "name": "trainer",
                "image": "pytorch/pytorch:2.3.0",
                "imagePullPolicy": "Always",
                "workingDir": "/workspace",
                "env": [{"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "envFrom": [{"configMapRef": {"name": "trainer-env"}}],
                "resources": {
                    "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                    "limits": {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": "1"},
                    "claims": [{"name": "gpu"}],
                },
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 10},
                "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                "stdin": True,
                "extra": "a field that happens to share the internal name",
            }
        ],
    },
}


def job_with_template(template: dict) -> dict:
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "trainer"},
        "spec": {"tasks": [{"name": "worker", "replicas": 2, "template": copy.deepcopy(template)}]},
    }


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_pod_template_round_trips_to_the_exact_json(fmt):
    doc = job_with_template(TEMPLATE_WITH_EVERYTHING)
    text = yaml.safe_dump(doc) if fmt == "yaml" else json.dumps(doc)
    (job,) = load_manifests(text)
    template = job.spec.tasks[0].template
    assert to_manifest(template) == TEMPLATE_WITH_EVERYTHING
    assert pod_spec_to_dict(template.spec) == TEMPLATE_WITH_EVERYTHING["spec"]
    assert container_to_dict(template.spec.containers[0]) == TEMPLATE_WITH_EVERYTHING["spec"]["containers"][0]
    assert template.spec.containers[0].extra["stdin"] is True


def test_whole_manifest_round_trips_through_to_manifest():
    (job,) = load_manifests(examples.SPARK_JOB, admission=False)
    again = decode_manifest(json.loads(json.dumps(to_manifest(job))), admission=False)
    assert again == job
    assert to_manifest(job)["apiVersion"] == "batch.volcano.sh/v1alpha1"
    assert to_manifest(job)["kind"] == "Job"


def test_unknown_fields_inside_metadata_and_status_are_ignored():
    doc = job_with_template(
        {
            "metadata": {"labels": {"a": "b"}, "someFutureField": 1},
            "spec": {"containers": [{"name": "c", "image": "x"}], "tolerations": [{"key": "k"}]},
        }
    )
    doc["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    doc["status"] = {"state": {"phase": "Running"}, "somethingNew": True}
    (job,) = load_manifests(json.dumps(doc))
    assert job.status.state.phase == "Running"
    assert job.spec.tasks[0].template.metadata.labels == {"a": "b"}


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ({"spec": {"containers": [{"name": "c", "image": "x", "resources": {"request": {"cpu": "1"}}}]}},
         "spec.tasks[0].template.spec.containers[0].resources.request"),
        ({"spec": {"containers": [{"name": "c", "image": "x"}], "tolerations": [{"key": "k", "efect": "NoSchedule"}]}},
         "spec.tasks[0].template.spec.tolerations[0].efect"),
        ({"spec": {"containers": [{"name": "c", "image": "x"}],
                   "affinity": {"nodeAffinity": {"requiredDuringScheduling": {}}}}},
         "spec.tasks[0].template.spec.affinity.nodeAffinity.requiredDuringScheduling"),
        ({"metadata": {}, "spec": {"containers": [{"name": "c", "image": "x"}]}, "specs": {}},
         "spec.tasks[0].template.specs"),
    ],
    ids=["resources-request", "toleration-efect", "node-affinity", "template-specs"],
)
def test_typos_in_typed_pod_template_parts_are_refused_not_lost(template, path):
    with pytest.raises(ManifestError) as info:
        load_manifests(json.dumps(job_with_template(template)))
    assert (info.value.path, info.value.reason) == (path, "unknown field")


def test_timestamps_stay_strings():
    doc = yaml.safe_load(examples.QUEUE)
    text = yaml.safe_dump(doc).replace("metadata:\n", "metadata:\n  creationTimestamp: 2024-05-01T10:00:00Z\n")
    (queue,) = load_manifests(text)
    assert queue.metadata.creation_timestamp == "2024-05-01T10:00:00Z"


# --- errors -------------------------------------------------------------------

JOB_HEAD = "apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\nmetadata: {name: mpi}\n"
TASK = "{name: a, replicas: 1, template: {spec: {containers: [{name: c, image: x}]}}}"


@pytest.mark.parametrize(
    ("text", "document", "path", "reason"),
    [
        (JOB_HEAD + f"spec:\n  minAvaliable: 2\n  tasks: [{TASK}]\n", 1, "spec.minAvaliable", "unknown field"),
        (JOB_HEAD + f"spec:\n  tasks: [{TASK}]\n  extra: 1\n", 1, "spec.extra", "unknown field"),
        (JOB_HEAD + "spec:\n  tasks: [{name: a, replica: 1}]\n", 1, "spec.tasks[0].replica", "unknown field"),
        (JOB_HEAD + f"spec:\n  tasks: [{TASK}]\n  policies: [{{event: PodFailed, actoin: RestartJob}}]\n", 1,
         "spec.policies[0].actoin", "unknown field"),
        (JOB_HEAD + f"bogus: 1\nspec:\n  tasks: [{TASK}]\n", 1, "bogus", "unknown field"),
        (JOB_HEAD + "spec:\n  tasks: [{name: a, replicas: '3'}]\n", 1, "spec.tasks[0].replicas",
         "expected an integer, got string '3'"),
        (JOB_HEAD + "spec:\n  tasks: [{name: a, replicas: 1.5}]\n", 1, "spec.tasks[0].replicas",
         "expected an integer, got number 1.5"),
        (JOB_HEAD + "spec:\n  tasks: {name: a}\n", 1, "spec.tasks", "expected a list, got an object"),
        (JOB_HEAD + "spec:\n  plugins: {ssh: [1]}\n", 1, "spec.plugins.ssh[0]", "expected a string, got number 1"),
        (JOB_HEAD + "spec:\n  tasks: [{name: a, template: {spec: {containers: [{resources: {requests: {cpu: true}}}]}}}]\n",
         1, "spec.tasks[0].template.spec.containers[0].resources.requests.cpu", "expected a quantity, got boolean true"),
        ("apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: q, labels: {a.b/c: 1}}\n", 1,
         'metadata.labels["a.b/c"]', "expected a string, got number 1"),
        ("apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: q}\nspec: {reclaimable: 'yes'}\n",
         1, "spec.reclaimable", "expected true or false, got string 'yes'"),
        ("apiVersion: bus.volcano.sh/v1alpha1\nkind: Command\nmetadata: {name: c}\ntarget: {kind: Job, nmae: x}\n",
         1, "target.nmae", "unknown field"),
        ("kind: Job\n", 1, "apiVersion", "required field is missing"),
        ("apiVersion: batch.volcano.sh/v1alpha1\n", 1, "kind", "required field is missing"),
        ("apiVersion: batch.volcano.sh/v1alpha1\nkind: Queue\n", 1, "kind",
         "unknown kind 'Queue' for batch.volcano.sh/v1alpha1 (known: CronJob, Job)"),
        ("apiVersion: apps/v1\nkind: Deployment\n", 1, "apiVersion", "unknown apiVersion/kind 'apps/v1'/'Deployment'"),
        ("apiVersion: batch.volcano.sh/v1\nkind: Job\n", 1, "apiVersion", "unknown apiVersion/kind"),
        ("- a\n- b\n", 1, "", "expected a manifest object, got list"),
        (examples.QUEUE + "---\njust a string\n", 2, "", "expected a manifest object, got str"),
    ],
    ids=[
        "typo-in-spec",
        "internal-extra-name-in-spec",
        "typo-in-task",
        "typo-in-policy",
        "unknown-top-level",
        "string-for-int",
        "float-for-int",
        "object-for-list",
        "plugin-args-not-strings",
        "bool-quantity",
        "label-not-string",
        "bool-as-string",
        "typo-in-target-object",
        "missing-apiversion",
        "missing-kind",
        "kind-not-in-group",
        "unknown-group",
        "unsupported-version",
        "list-document",
        "scalar-document",
    ],
)
def test_decoding_errors_name_the_field(text, document, path, reason):
    with pytest.raises(ManifestError) as info:
        load_manifests(text, source="in.yaml")
    err = info.value
    assert (err.source, err.document, err.path) == ("in.yaml", document, path)
    assert reason in err.reason
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("text", "document", "fragment"),
    [
        ("apiVersion: v1\nkind: Job\n  bad: [\n", 1, "invalid YAML at line 3, column 6"),
        (examples.QUEUE + "---\n---\nspec:\n  tasks: [\n", 3, "invalid YAML at line"),
        ("apiVersion: v1\nkind: Job\nkind: Queue\n", 1, "line 3, column 1: found duplicate key 'kind'"),
        ('{"apiVersion": "v1",\n "kind": }', 1, "invalid JSON at line 2, column 10"),
    ],
    ids=["yaml-syntax", "yaml-syntax-in-third-document", "duplicate-key", "json-syntax"],
)
def test_syntax_errors_name_the_line(text, document, fragment):
    with pytest.raises(ManifestError) as info:
        load_manifests(text, source="bad.yaml")
    assert info.value.document == document
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"bad.yaml document {document}: ")


def test_error_message_names_kind_namespace_and_name():
    text = examples.PYTORCH_JOB.replace("exitCode: 3", "exitCode: 137")
    with pytest.raises(ManifestError) as info:
        load_manifests(text, source="pytorch.yaml")
    assert str(info.value) == (
        "pytorch.yaml document 1 (Job ml/pytorch-job): spec.policies[2].exitCode: "
        "duplicate exitCode 137, already handled by spec.policies[1].exitCode"
    )


def test_error_inside_a_list_item_is_located():
    items = [yaml.safe_load(examples.QUEUE), yaml.safe_load(examples.MPI_JOB)]
    items[1]["spec"]["tasks"][0]["replicas"] = -1
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
    with pytest.raises(ManifestError) as info:
        load_manifests(text)
    assert info.value.path == "items[1].spec.tasks[0].replicas"


def test_all_violations_are_reported():
    doc = yaml.safe_load(examples.MPI_JOB)
    doc["spec"]["tasks"][0]["replicas"] = -1
    doc["spec"]["maxRetry"] = -2
    with pytest.raises(ManifestError) as info:
        load_manifests(json.dumps(doc))
    paths = [v.path for v in info.value.violations]
    assert "spec.maxRetry" in paths and "spec.tasks[0].replicas" in paths
    assert info.value.path == paths[0]


def test_non_strict_ignores_unknown_fields_from_a_newer_server():
    doc = yaml.safe_load(examples.MPI_JOB)
    doc["spec"]["someFutureField"] = {"x": 1}
    doc["spec"]["tasks"][0]["anotherOne"] = True
    with pytest.raises(ManifestError, match=r"spec\.tasks\[0\]\.anotherOne: unknown field"):
        load_manifests(json.dumps(doc))
    (job,) = load_manifests(json.dumps(doc), strict=False)
    assert job.spec.tasks[0].name == "mpimaster"
    assert job.spec.tasks[1].template.spec.containers[0].extra == {"workingDir": "/home"}


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: q}\nspec: {dequeueStrategy: traverse}\n",
         "dequeue_strategy", "traverse"),
        ("apiVersion: scheduling.volcano.sh/v1beta1\nkind: PodGroup\nmetadata: {name: g}\n"
         "spec: {subGroupPolicy: [{name: s, subGroupSize: 2}]}\n", "sub_group_policy", [{"name": "s", "subGroupSize": 2}]),
    ],
    ids=["queue-dequeue-strategy", "pod-group-sub-group-policy"],
)
def test_newer_volcano_fields_are_kept(text, field, value):
    (obj,) = load_manifests(text)
    assert getattr(obj.spec, field) == value


# --- property: anything unknown in a container or pod spec survives ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Typed fields, and hostNetwork (defaulting adds a dnsPolicy next to it).
_NOT_EXTRA = {
    "name", "image", "command", "args", "env", "ports", "volumeMounts", "resources", "containers", "initContainers",
    "nodeSelector", "tolerations", "affinity", "priorityClassName", "priority", "runtimeClassName", "schedulerName",
    "restartPolicy", "nodeName", "hostname", "subdomain", "volumes", "hostNetwork",
}
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_UNKNOWN = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", min_size=1, max_size=12).filter(lambda k: k not in _NOT_EXTRA),
    _JSON,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(container_extra=_UNKNOWN, spec_extra=_UNKNOWN)
def test_unknown_pod_template_fields_round_trip(container_extra, spec_extra):
    template = {
        "spec": {
            **spec_extra,
            "containers": [{**container_extra, "name": "c", "image": "busybox"}],
        }
    }
    (job,) = load_manifests(json.dumps(job_with_template(template)))
    assert to_manifest(job.spec.tasks[0].template) == template

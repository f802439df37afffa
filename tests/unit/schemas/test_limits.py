"""The edge's limits, one by one: each refusal names the field and the limit; values at the limit pass.

Where it sits: unit tests of ``schemas.limits`` as the loaders
(``schemas.loaders``), typed decoding (``schemas.decode``), admission
(``schemas.admission``) and the scenario loader (``schemas.scenario``) apply
it. ``docs/limits.md`` lists the same limits.
"""

from __future__ import annotations

import argparse

import pytest

from schemas import limits
from schemas.loaders import ManifestError, load_file, load_manifests
from schemas.scenario import ScenarioError, load_scenario


def job(replicas: object = 1, extra: str = "", tasks: int = 1, meta: str = "") -> str:
    task = f"""\
  - name: t{{i}}
    replicas: {replicas}
    template:
      spec:
        containers:
        - name: c
          image: busybox
{extra}"""
    return (
        f"apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\nmetadata: {{name: j{meta}}}\nspec:\n  tasks:\n"
        + "".join(task.replace("{i}", str(i)) for i in range(tasks))
    )


def refused(text: str, *words: str) -> str:
    with pytest.raises(ManifestError) as caught:
        load_manifests(text, source="m.yaml")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1000
    for word in words:
        assert word in message, message
    return message


def test_replicas_are_int32_and_a_job_has_at_most_10000_pods():
    refused(job(2**31), "spec.tasks[0].replicas", "int32", "2147483647")
    refused(job(10**9), "spec.tasks[0].replicas", "10000 pods")
    refused(job(5000, tasks=3), "spec.tasks", "15000 replicas in all", "10000")
    (ok,) = load_manifests(job(5000, tasks=2))
    assert sum(t.replicas for t in ok.spec.tasks) == limits.MAX_PODS_PER_JOB


def test_queue_weight_is_int32():
    queue = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: q}\nspec: {weight: %d}\n"
    refused(queue % 2**31, "spec.weight", "int32")
    (ok,) = load_manifests(queue % (2**31 - 1))
    assert ok.spec.weight == 2**31 - 1


def test_untyped_fields_hold_int64_and_numbers_are_not_thousands_of_digits():
    refused(job(extra=f"          containerPortX: {2**63}\n"), "containerPortX", "int64")
    refused(job(extra="          x: " + "9" * 5000 + "\n"), "x", "5000 digits")
    refused('{"apiVersion": "v1", "kind": "Node", "x": ' + "9" * 5000 + "}", "5000 digits")


def test_alias_bombs_and_recursive_aliases_are_refused_before_they_expand():
    bomb = "a0: &a0 [x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10)
    )
    refused(bomb, "aliases expand to more than 10000 nodes")
    refused("a: &a [*a]\n", "recursive")
    refused("a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n", "more than 100 YAML aliases")
    # A few aliases, as people use them, still work.
    text = job(extra="          env: &env [{name: A, value: '1'}]\n          x-copy: *env\n")
    (ok,) = load_manifests(text)
    assert ok.spec.tasks[0].template.spec.containers[0].env == [{"name": "A", "value": "1"}]


@pytest.mark.parametrize(
    "text", ['{"a": ' * 65 + "1" + "}" * 65, "[" * 5000 + "]" * 5000, "a: " + "[" * 65 + "]" * 65]
)
def test_nesting_is_at_most_64_levels(text):
    refused(text, "nested more than 64 levels deep")


def test_strings_files_and_objects_have_sizes():
    refused(job(extra="          workingDir: " + "x" * (limits.MAX_STRING + 1) + "\n"), "workingDir", "262145")
    refused("x" * (limits.MAX_FILE_BYTES + 1), "3145728 bytes (3 MiB)")
    # Under every other limit, but over 1 MiB as an object.
    many = "".join(f"          x{i}: {'y' * 200_000}\n" for i in range(6))
    refused(job(extra=many), "bytes as JSON", "1048576 bytes (1 MiB)")


def test_a_file_over_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (limits.MAX_FILE_BYTES + 10))
    with pytest.raises(ManifestError, match=r"the file is 3145738 bytes, more than the 3145728 bytes \(3 MiB\)"):
        load_file(path)


def test_command_target_names_are_kubernetes_names():
    command = (
        "apiVersion: bus.volcano.sh/v1alpha1\nkind: Command\nmetadata: {name: c, namespace: ml}\naction: %s\n"
        "target: {apiVersion: %s, kind: %s, name: '%s'%s}\n"
    )
    job, queue = "batch.volcano.sh/v1alpha1", "scheduling.volcano.sh/v1beta1"
    refused(command % ("AbortJob", job, "Job", "../../Bad_NS!/Not A Valid/Name!", ""), "target.name", "RFC 1123")
    # Volcano's target is an owner reference: no namespace (the Command's own is meant).
    refused(command % ("AbortJob", job, "Job", "ok", ", namespace: 'Bad_NS!'"), "target.namespace", "unknown field")
    refused(command % ("OpenQueue", queue, "Queue", "Not A Queue", ""), "target.name", "queue name")
    (ok,) = load_manifests(command % ("AbortJob", job, "Job", "train", ""))
    assert (ok.metadata.namespace, ok.target_object.name) == ("ml", "train")


def test_labels_annotations_and_other_names():
    refused(job(meta=", labels: {a: " + "v" * 64 + "}"), "metadata.labels.a", "63")
    refused(job(meta=", labels: {'bad key!': v}"), "not a valid label key")
    refused(job(meta=", annotations: {a: " + "v" * 200_000 + ", b: " + "v" * 100_000 + "}"), "256 KiB")
    refused(job(extra="        priorityClassName: Not_Valid\n"), "priorityClassName", "RFC 1123")
    refused(job(extra="        nodeName: ../etc\n"), "nodeName", "RFC 1123")
    refused(job(extra="          resources: {requests: {cpu: '" + "1" * 65 + "'}}\n"), "cpu", "65 characters")


def test_integer_flags_name_their_range():
    flag = limits.IntArg(1, limits.INT32[1])
    assert flag("7") == 7
    for text, words in (("0", "out of range 1..2147483647"), ("2147483648", "out of range"),
                        ("9" * 5000, "5000 characters"), ("x", "not an integer")):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            flag(text)


SCENARIO = """\
nodes:
  - {name: n1, allocatable: {cpu: 4}}
%s
workload: []
"""


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("  - {prefix: many-, count: 6000, allocatable: {cpu: 1}}", ("6001 nodes", "5000")),
        ("  - {name: Not_A_Node, allocatable: {cpu: 1}}", ("nodes[1].name", "RFC 1123")),
        ("priorityClasses: {high: 2000000000}", ("priorityClasses.high", "1000000000")),
        ("priorityClasses: {Bad_Name: 1}", ("priority class name", "RFC 1123")),
        ("running: [{job: ml/old, node: n1, count: 1000000000}]", ("running[0].count", "10000")),
        ("a: &a [*a]", ("recursive",)),
    ],
)
def test_scenario_limits(tmp_path, extra, words):
    path = tmp_path / "s.yaml"
    text = SCENARIO % extra if extra.startswith("  -") else SCENARIO.replace("%s\n", "") + extra + "\n"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    for word in words:
        assert word in str(caught.value), str(caught.value)

"""The CRDs' CEL rules: the API server refuses what Volcano's admission refuses, before the log.

The API-server fake evaluates the ``x-kubernetes-validations`` that
``eventbatch.kube.crds`` generates (``tests.kube.apiserver.cel``, with
``cel-python``) and answers 422 naming the rule's message, as a real API
server does. Volcano's own invalid examples (``tests/fixtures/volcano/examples/
invalid_jobs``) are refused there, except the one whose rule stays in the
handler (docs/kubernetes.md); every valid example is accepted. A rule never
refuses what ``schemas.admission`` accepts: each object a rule refuses is
refused by admission too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import GROUPS, RULES, open_api_schema
from schemas.loaders import ManifestError, admit, decode_manifest
from tests.kube.apiserver.cel import validate
from tests.kube.conftest import ROOT

EXAMPLES = ROOT / "tests" / "fixtures" / "volcano" / "examples"
INVALID = EXAMPLES / "invalid_jobs"
PLURALS = {"Job": "jobs", "Queue": "queues", "PodGroup": "podgroups", "Command": "commands"}


def manifest(path: Path) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


async def create(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    group, version = GROUPS[obj["kind"]]
    plural = PLURALS[obj["kind"]]
    if obj["kind"] == "Queue":
        return await kube.call(kube.custom.create_cluster_custom_object, group, version, plural, obj)
    namespace = obj["metadata"].get("namespace", "default")
    return await kube.call(kube.custom.create_namespaced_custom_object, group, version, namespace, plural, obj)


async def refusal(kube: Kube, obj: dict[str, Any]) -> str:
    """The API server's message refusing ``obj`` ("" if it was created)."""
    try:
        await create(kube, obj)
    except ApiException as exc:
        assert exc.status == 422, exc.body
        return str(exc.body)
    return ""


@pytest.mark.parametrize(
    "example, message",
    [
        ("minAvailable-webhook-deny.yaml", "spec: Invalid value: \\\"object\\\": minAvailable must not exceed the total replicas of all tasks"),
        ("duplicatedTaskName-webhook-deny.yaml", "spec.tasks: Invalid value: \\\"array\\\": task names must be unique"),
        ("duplicatedPolicyEvent-webhook-deny.yaml", ""),  # accepted here: refused by the handler (docs/kubernetes.md)
    ],
    ids=["minAvailable", "duplicatedTaskName", "duplicatedPolicyEvent"],
)
async def test_volcanos_invalid_jobs_are_refused_by_the_api_server_with_the_rules_message(
    crds: Kube, example: str, message: str
) -> None:
    obj = manifest(INVALID / example)
    assert obj["apiVersion"] == "batch.volcano.sh/v1alpha1"  # applied unchanged: the default groups are Volcano's
    refused = await refusal(crds, obj)
    if message:
        assert message in refused
    else:
        assert refused == ""
    with pytest.raises(ManifestError):  # and Volcano's admission, as the CLI applies it, refuses each
        admit(decode_manifest(obj))


def broken(kind: str) -> list[tuple[str, dict[str, Any], str]]:
    """(what, object, message) for each rule: a valid object with one thing broken."""
    job = manifest(EXAMPLES / "job.yaml")
    queue = {"apiVersion": "/".join(GROUPS["Queue"]), "kind": "Queue", "metadata": {"name": "q"}, "spec": {"weight": 1}}
    group = {"apiVersion": "/".join(GROUPS["PodGroup"]), "kind": "PodGroup", "metadata": {"name": "pg", "namespace": "default"},
             "spec": {"minMember": 1, "minTaskMember": {"a": 1}}}
    command = {"apiVersion": "/".join(GROUPS["Command"]), "kind": "Command", "metadata": {"name": "c", "namespace": "default"},
               "action": "AbortJob", "target": {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "name": "j", "uid": "u"}}
    cases: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
        ("job-minAvailable-negative", job, {"spec": {"minAvailable": -1}}, "minAvailable must be >= 0"),
        ("job-maxRetry-negative", job, {"spec": {"maxRetry": -1}}, "maxRetry must be >= 0"),
        ("job-ttl-negative", job, {"spec": {"ttlSecondsAfterFinished": -1}}, "ttlSecondsAfterFinished must be >= 0"),
        ("job-minSuccess-zero", job, {"spec": {"minSuccess": 0}}, "minSuccess must be >= 1"),
        ("job-minSuccess-above-total", job, {"spec": {"minSuccess": 7}}, "minSuccess must not exceed the total replicas"),
        ("job-minAvailable-above-total", job, {"spec": {"minAvailable": 7}}, "minAvailable must not exceed the total replicas of all tasks"),
        ("job-duplicate-task", job, {"spec": {"tasks": [job["spec"]["tasks"][0], job["spec"]["tasks"][0]]}}, "task names must be unique"),
        ("job-no-tasks", job, {"spec": {"tasks": []}}, "a job needs at least one task"),
        ("task-replicas-negative", job, {"task": {"replicas": -1}}, "replicas must be >= 0"),
        ("task-minAvailable-negative", job, {"task": {"minAvailable": -1}}, "a task's minAvailable must be >= 0"),
        ("task-minAvailable-above-replicas", job, {"task": {"minAvailable": 7}}, "a task's minAvailable must not exceed its replicas"),
        ("task-maxRetry-negative", job, {"task": {"maxRetry": -1}}, "a task's maxRetry must be >= 0"),
        ("policy-exitCode-zero", job, {"spec": {"policies": [{"exitCode": 0, "action": "RestartJob"}]}}, "exitCode must not be 0"),
        ("policy-event-and-exitCode", job, {"spec": {"policies": [{"event": "PodFailed", "exitCode": 3, "action": "RestartJob"}]}},
         "either event/events or exitCode"),
        ("policy-neither", job, {"spec": {"policies": [{"action": "RestartJob"}]}}, "needs event, events or exitCode"),
        ("topology-mode", job, {"spec": {"networkTopology": {"mode": "loose"}}}, "networkTopology.mode must be one of hard, soft"),
        ("topology-tier", job, {"spec": {"networkTopology": {"mode": "hard", "highestTierAllowed": 0}}}, "highestTierAllowed must be >= 1"),
        ("queue-weight-negative", queue, {"spec": {"weight": -1}}, "weight must be a positive integer"),
        ("queue-own-parent", queue, {"spec": {"parent": "q"}}, "a queue cannot be its own parent"),
        ("podgroup-minMember-negative", group, {"spec": {"minMember": -1}}, "minMember must be >= 0"),
        ("podgroup-minTaskMember-negative", group, {"spec": {"minTaskMember": {"a": -1}}}, "minTaskMember values must be >= 0"),
        ("command-no-target", command, {"target": None}, "target is required"),
        ("command-target-kind", command, {"target": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}}, "target.kind must be Job or Queue"),
        ("command-no-action", command, {"action": ""}, "action is required"),
        ("command-queue-action-on-job", command, {"action": "CloseQueue"}, "unknown action for the target's kind"),
    ]
    out = []
    for what, base, change, message in cases:
        if base["kind"] != kind:
            continue
        obj = copy.deepcopy(base)
        for key, value in change.items():
            if key == "task":
                obj["spec"]["tasks"][0].update(value)
            elif value is None:
                obj.pop(key)
            elif isinstance(value, dict) and isinstance(obj.get(key), dict) and key != "target":
                obj[key].update(value)
            else:
                obj[key] = value
        out.append((what, obj, message))
    return out


CASES = [case for kind in PLURALS for case in broken(kind)]


@pytest.mark.parametrize("what, obj, message", CASES, ids=[c[0] for c in CASES])
def test_each_rule_refuses_only_what_admission_refuses(what: str, obj: dict[str, Any], message: str) -> None:
    errors = validate(obj, open_api_schema(obj["kind"]))
    assert any(message in e for e in errors), errors
    with pytest.raises(ManifestError):
        admit(decode_manifest(obj))


def test_a_queue_weight_of_0_is_volcanos_default_and_accepted() -> None:
    queue = {"apiVersion": "/".join(GROUPS["Queue"]), "kind": "Queue", "metadata": {"name": "q"}, "spec": {"weight": 0}}
    assert validate(queue, open_api_schema("Queue")) == []
    assert admit(decode_manifest(queue)).spec.weight == 1


def test_every_rule_is_exercised() -> None:
    messages = {m for rules in RULES.values() for path_rules in rules.values() for _, m in path_rules}
    exercised = {m for m in messages if any(text in m for _, _, text in CASES)}
    assert exercised == messages


async def test_an_invalid_queue_and_command_are_refused_and_nothing_is_stored(crds: Kube) -> None:
    (_, queue, _), = [c for c in CASES if c[0] == "queue-weight-negative"]
    (_, command, _), = [c for c in CASES if c[0] == "command-queue-action-on-job"]
    assert "weight must be a positive integer" in await refusal(crds, queue)
    assert "unknown action for the target's kind" in await refusal(crds, command)
    listed = await crds.call(crds.custom.list_cluster_custom_object, *GROUPS["Queue"], "queues")
    assert listed["items"] == []

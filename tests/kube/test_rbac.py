"""RBAC, where it applies: deploy/base/rbac.yaml's rules with the namespaces they are bound in.

``grants`` reads which ``(group, resource, verb)`` each binding allows and
where (``*``: every namespace, through a ClusterRoleBinding; else the
RoleBinding's namespace); ``ungranted`` lists the calls an API server saw
that no binding allows where they were made. ``tests/kube/test_e2e.py``
runs it on every call of a real ``serve --cluster kube`` (``assert_rbac``);
the tests here check the manifests themselves: writes to pods and Secrets
are never granted cluster-wide, and every role is bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "base" / "rbac.yaml"
EVERYWHERE = "*"


def grants(rbac_file: Path = RBAC, *, rename: dict[str, str] | None = None) -> set[tuple[str, str, str, str]]:
    """``(group, resource, verb, namespace)`` each binding of the file allows.

    ``rename`` maps a namespace of the manifests to the one a test runs in
    (the tests run eventbatch in ``default``, the Deployment in ``eventbatch-system``).
    """
    rename = rename or {}
    docs = [d for d in yaml.safe_load_all(rbac_file.read_text()) if d]
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d["rules"]
             for d in docs if d["kind"] in ("ClusterRole", "Role")}
    out = set()
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        namespace = EVERYWHERE if binding["kind"] == "ClusterRoleBinding" else binding["metadata"]["namespace"]
        namespace = rename.get(namespace, namespace)
        ref = binding["roleRef"]
        role_ns = "" if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]
        for rule in roles[(ref["kind"], role_ns, ref["name"])]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add((group, resource, verb, namespace))
    return out


def ungranted(calls: Iterable, allowed: set[tuple[str, str, str, str]]) -> set[tuple[str, str, str, str]]:
    """The ``(group, resource, verb, namespace)`` of calls no binding allows where they were made."""
    missing = set()
    for call in calls:
        where = call.namespace or EVERYWHERE  # a cluster-scoped call, or a list across namespaces
        if (call.group, call.resource, call.verb, EVERYWHERE) in allowed:
            continue
        if where != EVERYWHERE and (call.group, call.resource, call.verb, where) in allowed:
            continue
        missing.add((call.group, call.resource, call.verb, where))
    return missing


def test_pods_and_secrets_are_written_only_in_the_namespaces_bound_for_jobs() -> None:
    allowed = grants()
    everywhere = {(g, r, v) for g, r, v, ns in allowed if ns == EVERYWHERE}
    for resource in ("pods", "pods/binding", "secrets", "services", "configmaps", "events"):
        writes = {v for g, r, v in everywhere if g == "" and r == resource} - {"list", "watch"}
        assert writes == set(), f"{resource}: {sorted(writes)} granted in every namespace"
    assert ("", "secrets", "create", "default") in allowed and ("", "pods", "create", "default") in allowed
    assert ("", "secrets", "create", "kube-system") not in allowed
    assert ("", "secrets", "list", EVERYWHERE) not in allowed and ("", "secrets", "watch", EVERYWHERE) not in allowed


def test_every_role_is_bound_and_the_lease_only_in_eventbatch_system() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    roles = {d["metadata"]["name"] for d in docs if d["kind"] in ("ClusterRole", "Role")}
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")}
    assert roles == bound
    leases = {ns for g, r, v, ns in grants() if r == "leases"}
    assert leases == {"eventbatch-system"}


def test_a_call_outside_the_bound_namespaces_is_reported() -> None:
    from tests.kube.apiserver.server import Call

    allowed = grants(rename={"eventbatch-system": "default"})
    calls = [
        Call("create", "", "secrets", "default", "job-ssh", 201),
        Call("create", "", "secrets", "team-a", "job-ssh", 201),
        Call("list", "", "pods", "", "", 200),
        Call("update", "coordination.k8s.io", "leases", "default", "eventbatch", 200),
    ]
    assert ungranted(calls, allowed) == {("", "secrets", "create", "team-a")}

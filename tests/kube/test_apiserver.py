"""The API-server fake speaks the Kubernetes wire protocol to an unchanged kubernetes_asyncio.

Every other kube test trusts this server; these tests pin down the behaviour
they rely on: conflicts, patch content types, watches from a
resourceVersion with bookmarks and 410 Expired, selectors, binding, graceful
deletion with finalizers, CRDs with a status subresource and schema checks.
"""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import JSON_PATCH, MERGE, STRATEGIC, Kube
from eventbatch.kube.crds import GROUPS
from tests.kube.apiserver import ApiServer


def pod(name: str, *, node: str = "", labels: dict | None = None, scheduler: str = "eventbatch") -> dict:
    spec = {"containers": [{"name": "main", "image": "busybox"}], "schedulerName": scheduler}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


async def watch_events(kube: Kube, method, *args, **kwargs) -> list[tuple[str, str]]:
    """(type, name or resourceVersion) of every event of one watch with a short timeout."""
    out = []
    async for event in kube.lines(method, *args, timeout_seconds=1, **kwargs):
        obj = event["object"]
        meta = obj.get("metadata") or {}
        out.append((event["type"], meta.get("name") or meta.get("resourceVersion") or obj.get("reason", "")))
    return out


async def test_create_twice_is_409_already_exists(kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    assert exc.value.status == 409 and "AlreadyExists" in exc.value.body


async def test_update_with_a_stale_resource_version_is_409_conflict(kube: Kube) -> None:
    created = await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    created["metadata"]["labels"] = {"x": "1"}
    await kube.call(kube.core.replace_namespaced_pod, "a", "default", created)
    created["metadata"]["labels"] = {"x": "2"}
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.replace_namespaced_pod, "a", "default", created)
    assert exc.value.status == 409 and "Conflict" in exc.value.body


async def test_create_in_a_missing_namespace_is_404(kube: Kube) -> None:
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.create_namespaced_pod, "nowhere", pod("a"), retries=False)
    assert exc.value.status == 404


@pytest.mark.parametrize(
    "content_type, body, labels",
    [
        (MERGE, {"metadata": {"labels": {"b": "2", "a": None}}}, {"b": "2"}),
        (STRATEGIC, {"metadata": {"labels": {"b": "2"}}}, {"a": "1", "b": "2"}),
        (JSON_PATCH, [{"op": "add", "path": "/metadata/labels/b", "value": "2"}], {"a": "1", "b": "2"}),
    ],
    ids=["merge", "strategic-merge", "json-patch"],
)
async def test_patch_content_types(kube: Kube, content_type: str, body, labels: dict) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a", labels={"a": "1"}))
    patched = await kube.call(kube.core.patch_namespaced_pod, "a", "default", body, _content_type=content_type)
    assert patched["metadata"]["labels"] == labels


async def test_an_unknown_patch_content_type_is_415(kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.patch_namespaced_pod, "a", "default", {"x": 1}, _content_type="application/vnd.example+json")
    assert exc.value.status == 415


async def test_strategic_merge_patch_is_415_on_custom_objects(crds: Kube) -> None:
    kube = crds
    group, version = GROUPS["Queue"]
    await kube.call(kube.custom.create_cluster_custom_object, group, version, "queues", {"apiVersion": f"{group}/{version}", "kind": "Queue", "metadata": {"name": "q"}})
    with pytest.raises(ApiException) as exc:
        await kube.call(
            kube.custom.patch_cluster_custom_object, group, version, "queues", "q", {"spec": {"weight": 2}}, _content_type=STRATEGIC
        )
    assert exc.value.status == 415


async def test_watch_replays_from_a_resource_version_and_sends_bookmarks(kube: Kube) -> None:
    listed = await kube.call(kube.core.list_pod_for_all_namespaces)
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    await kube.call(kube.core.delete_namespaced_pod, "a", "default")
    events = await watch_events(
        kube, kube.core.list_pod_for_all_namespaces, resource_version=listed["metadata"]["resourceVersion"], allow_watch_bookmarks=True
    )
    assert [t for t, _ in events if t != "BOOKMARK"] == ["ADDED", "DELETED"]
    assert "BOOKMARK" in [t for t, _ in events]


async def test_watch_from_a_compacted_version_is_an_error_event_410(apiserver: ApiServer, kube: Kube) -> None:
    listed = await kube.call(kube.core.list_pod_for_all_namespaces)
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    apiserver.compact()
    events = []
    async for event in kube.lines(
        kube.core.list_pod_for_all_namespaces, resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=1
    ):
        events.append(event)
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [("ERROR", 410, "Expired")]


@pytest.mark.parametrize(
    "selector, expected",
    [
        ({"field_selector": "spec.nodeName=n1"}, ["on-n1"]),
        ({"field_selector": "spec.nodeName!="}, ["on-n1", "on-n2"]),
        ({"field_selector": "spec.nodeName="}, ["unbound"]),
        ({"label_selector": "team=a"}, ["on-n1", "unbound"]),
        ({"label_selector": "team in (b),tier"}, ["on-n2"]),
        ({"label_selector": "!team"}, []),
    ],
    ids=["node-equals", "bound", "unbound", "label-equals", "label-set-and-exists", "label-absent"],
)
async def test_list_selectors(kube: Kube, selector: dict, expected: list[str]) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("on-n1", node="n1", labels={"team": "a"}))
    await kube.call(kube.core.create_namespaced_pod, "default", pod("on-n2", node="n2", labels={"team": "b", "tier": "x"}))
    await kube.call(kube.core.create_namespaced_pod, "default", pod("unbound", labels={"team": "a"}))
    listed = await kube.call(kube.core.list_namespaced_pod, "default", **selector)
    assert [p["metadata"]["name"] for p in listed["items"]] == expected


async def test_a_watch_with_a_field_selector_sees_a_pod_enter_it_as_added(kube: Kube) -> None:
    listed = await kube.call(kube.core.list_pod_for_all_namespaces)
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    body = {"metadata": {"name": "a"}, "target": {"kind": "Node", "name": "n1"}}
    await kube.call(kube.core.create_namespaced_pod_binding, "a", "default", body)
    events = await watch_events(
        kube, kube.core.list_pod_for_all_namespaces, field_selector="spec.nodeName=n1", resource_version=listed["metadata"]["resourceVersion"]
    )
    assert events == [("ADDED", "a")]


async def test_binding_sets_the_node_and_a_second_binding_is_409(kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    body = {"metadata": {"name": "a"}, "target": {"kind": "Node", "name": "n1"}}
    reply = await kube.call(kube.core.create_namespaced_pod_binding, "a", "default", body)
    assert reply["kind"] == "Status" and reply["status"] == "Success"
    assert (await kube.call(kube.core.read_namespaced_pod, "a", "default"))["spec"]["nodeName"] == "n1"
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.create_namespaced_pod_binding, "a", "default", body)
    assert exc.value.status == 409


async def test_a_bound_pod_is_deleted_gracefully(kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a", node="n1"))
    await kube.call(kube.core.delete_namespaced_pod, "a", "default")
    terminating = await kube.call(kube.core.read_namespaced_pod, "a", "default")
    assert terminating["metadata"]["deletionTimestamp"]
    await kube.call(kube.core.delete_namespaced_pod, "a", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.read_namespaced_pod, "a", "default", retries=False)
    assert exc.value.status == 404


async def test_finalizers_hold_deletion_until_removed(kube: Kube) -> None:
    cm = {"metadata": {"name": "c", "finalizers": ["example.com/keep"]}, "data": {"k": "v"}}
    await kube.call(kube.core.create_namespaced_config_map, "default", cm)
    await kube.call(kube.core.delete_namespaced_config_map, "c", "default")
    held = await kube.call(kube.core.read_namespaced_config_map, "c", "default")
    assert held["metadata"]["deletionTimestamp"]
    await kube.call(kube.core.patch_namespaced_config_map, "c", "default", {"metadata": {"finalizers": None}}, _content_type=MERGE)
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.core.read_namespaced_config_map, "c", "default", retries=False)
    assert exc.value.status == 404


async def test_custom_objects_keep_status_to_the_status_subresource(crds: Kube) -> None:
    kube = crds
    group, version = GROUPS["Queue"]
    queue = {"apiVersion": f"{group}/{version}", "kind": "Queue", "metadata": {"name": "q"}, "spec": {"weight": 1}, "status": {"state": "Open"}}
    created = await kube.call(kube.custom.create_cluster_custom_object, group, version, "queues", queue)
    assert "status" not in created and created["metadata"]["generation"] == 1
    patched = await kube.call(
        kube.custom.patch_cluster_custom_object_status, group, version, "queues", "q", {"status": {"state": "Closed"}}, _content_type=MERGE
    )
    assert patched["status"] == {"state": "Closed"} and patched["metadata"]["generation"] == 1
    spec = await kube.call(
        kube.custom.patch_cluster_custom_object, group, version, "queues", "q", {"spec": {"weight": 3}, "status": {"state": "Open"}}, _content_type=MERGE
    )
    assert spec["status"] == {"state": "Closed"} and spec["metadata"]["generation"] == 2


async def test_a_podgroup_has_no_status_subresource_as_in_volcanos_crd(crds: Kube) -> None:
    kube = crds
    group, version = GROUPS["PodGroup"]
    pg = {"apiVersion": f"{group}/{version}", "kind": "PodGroup", "metadata": {"name": "pg"}, "spec": {"minMember": 1},
          "status": {"phase": "Pending"}}
    created = await kube.call(kube.custom.create_namespaced_custom_object, group, version, "default", "podgroups", pg)
    assert created["status"] == {"phase": "Pending"}  # kept: no subresource owns it
    with pytest.raises(ApiException) as exc:
        await kube.call(
            kube.custom.patch_namespaced_custom_object_status, group, version, "default", "podgroups", "pg",
            {"status": {"phase": "Running"}}, _content_type=MERGE, retries=False,
        )
    assert exc.value.status == 404
    patched = await kube.call(
        kube.custom.patch_namespaced_custom_object, group, version, "default", "podgroups", "pg",
        [{"op": "add", "path": "/status", "value": {"phase": "Running"}}], _content_type=JSON_PATCH,
    )
    assert patched["status"] == {"phase": "Running"} and patched["metadata"]["generation"] == 2


async def test_a_null_where_the_schema_is_not_nullable_is_pruned(crds: Kube) -> None:
    kube = crds
    group, version = GROUPS["Queue"]
    queue = {"apiVersion": f"{group}/{version}", "kind": "Queue", "metadata": {"name": "q"}, "spec": {"weight": 1, "parent": None}}
    created = await kube.call(kube.custom.create_cluster_custom_object, group, version, "queues", queue)
    assert created["spec"] == {"weight": 1}


async def test_custom_objects_are_checked_against_the_crd_schema(crds: Kube) -> None:
    kube = crds
    group, version = GROUPS["Queue"]
    bad = {"apiVersion": f"{group}/{version}", "kind": "Queue", "metadata": {"name": "q"}, "spec": {"weight": "heavy"}}
    with pytest.raises(ApiException) as exc:
        await kube.call(kube.custom.create_cluster_custom_object, group, version, "queues", bad)
    assert exc.value.status == 422 and "spec.weight" in exc.value.body


async def test_the_audit_names_verbs_as_rbac_does(apiserver: ApiServer, kube: Kube) -> None:
    await kube.call(kube.core.create_namespaced_pod, "default", pod("a"))
    body = {"metadata": {"name": "a"}, "target": {"kind": "Node", "name": "n1"}}
    await kube.call(kube.core.create_namespaced_pod_binding, "a", "default", body)
    await kube.call(kube.core.patch_namespaced_pod_status, "a", "default", {"status": {"phase": "Running"}}, _content_type=MERGE)
    await kube.call(kube.core.list_pod_for_all_namespaces)
    assert apiserver.calls() == {
        ("", "pods", "create"),
        ("", "pods/binding", "create"),
        ("", "pods/status", "patch"),
        ("", "pods", "list"),
    }

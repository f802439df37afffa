"""The fake API server's HTTP layer: the Kubernetes REST wire protocol on aiohttp.

Where it sits: what kubernetes_asyncio talks to in the kube tests, unchanged,
over HTTP, through a kubeconfig file (``write_kubeconfig``). It routes
``/api/v1/...`` and ``/apis/{group}/{version}/...`` to the ``Store``:
get, list, watch, create, update, patch (merge, strategic merge, JSON patch;
415 for anything else), delete, the ``status`` subresource and
``pods/binding``. Watches stream newline-delimited JSON events from a
resourceVersion, with bookmarks and ``timeoutSeconds``, and an ERROR 410
event for a compacted version (``watch.py``).

Every request is recorded as ``(verb, resource, namespace)`` in RBAC terms
(``audit``), so a test can compare what a component really did with the
ClusterRole it is deployed with. ``fail_next`` injects server errors.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.kube.apiserver import cel, errors, patch, schema, selectors
from tests.kube.apiserver.resources import BUILTIN, ResourceType, from_crd
from tests.kube.apiserver.store import Store, now_rfc3339
from tests.kube.apiserver.watch import watch

_TRUE = ("true", "1", "True")


@dataclass(frozen=True)
class Call:
    verb: str  # get list watch create update patch delete
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str
    name: str
    code: int
    user: str = ""


@dataclass
class Route:
    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str


class ApiServer:
    """``async with ApiServer() as server:`` serves on ``server.url``."""

    def __init__(self, *, bookmark_interval: float = 1.0, host: str = "127.0.0.1") -> None:
        self.store = Store()
        self.host = host
        self.port = 0
        self.bookmark_interval = bookmark_interval
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTIN:
            self._serve(rt)
        self.audit: list[Call] = []
        self._failures: list[tuple[int, str | None]] = []
        self._runner: web.AppRunner | None = None
        self._watches: set[web.StreamResponse] = set()
        self._stopping = False
        self._expired = 0
        self._hangs: list[tuple[float, str | None]] = []

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> ApiServer:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for ns in ("default", "kube-system", "kube-node-lease"):
            await self.store.create(self.types[("", "v1", "namespaces")], "", {"metadata": {"name": ns}})
        return self

    async def stop(self) -> None:
        self._stopping = True
        async with self.store.changed:
            self.store.changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ApiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str | Path, *, user: str = "eventbatch") -> Path:
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": user, "user": {"token": user}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": user}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- test controls -----------------------------------------------------------

    def fail_next(self, count: int = 1, *, code: int = 500, path_contains: str | None = None) -> None:
        """The next ``count`` requests (whose path contains ``path_contains``) get ``code``."""
        self._failures.extend([(code, path_contains)] * count)

    def hang_next(self, count: int = 1, *, seconds: float = 5.0, path_contains: str | None = None) -> None:
        """The next ``count`` requests (whose path contains ``path_contains``) get no answer for ``seconds``."""
        self._hangs.extend([(seconds, path_contains)] * count)

    def compact(self) -> None:
        self.store.compact()

    async def expire_watches(self) -> None:
        """Compact, and end every open watch with an ERROR 410 event (as after etcd compaction
        outran the watch cache): clients must list again."""
        self.store.compact()
        self._expired += 1
        async with self.store.changed:
            self.store.changed.notify_all()

    async def drop_watches(self) -> None:
        """Cut every open watch connection, as a load balancer or restart would."""
        for response in list(self._watches):
            transport = response._req.transport if response._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.close()

    def calls(self, *, user: str | None = None) -> set[tuple[str, str, str]]:
        """Distinct successful ``(group, resource, verb)`` triples."""
        return {
            (c.group, c.resource, c.verb)
            for c in self.audit
            if c.code < 400 or c.code in (404, 409)
            if user is None or c.user == user
        }

    def resource(self, group: str, plural: str) -> ResourceType:
        for (g, _, p), rt in self.types.items():
            if g == group and p == plural:
                return rt
        raise KeyError(f"{plural}.{group}")

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.list(self.resource(group, plural), namespace)

    def _serve(self, rt: ResourceType) -> None:
        self.types[(rt.group, rt.version, rt.plural)] = rt

    # -- routing -----------------------------------------------------------------

    def _route(self, path: str) -> Route:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.not_found("path", path)
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise errors.not_found("path", path)
        rt = self.types.get((group, version, rest[0]))
        if rt is None:
            raise errors.ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        if rt.namespaced and namespace is None and len(rest) > 1:
            raise errors.not_found(rt.gr, rest[1])
        return Route(rt, namespace, rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else "")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        verb, route, code, name = request.method.lower(), None, 500, ""
        user = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        try:
            route = self._route(request.path)
            verb = self._verb(request, route)
            await self._inject_hang(request.path)
            self._inject_failure(request.path)
            if verb == "watch":
                code = 200
                return await watch(self, request, route)
            code, body = await self._dispatch(verb, request, route)
            name = route.name or ((body.get("metadata") or {}).get("name", "") if isinstance(body, dict) else "")
            return web.json_response(body, status=code)
        except errors.ApiError as exc:
            code = exc.code
            return web.json_response(exc.status(), status=exc.code)
        finally:
            if route is not None:
                resource = route.rt.plural + (f"/{route.subresource}" if route.subresource else "")
                self.audit.append(
                    Call(verb, route.rt.group, resource, route.namespace or "", name or route.name, code, user)
                )

    async def _inject_hang(self, path: str) -> None:
        for i, (seconds, contains) in enumerate(self._hangs):
            if contains is None or contains in path:
                del self._hangs[i]
                await asyncio.sleep(seconds)
                return

    def _inject_failure(self, path: str) -> None:
        for i, (code, contains) in enumerate(self._failures):
            if contains is None or contains in path:
                del self._failures[i]
                raise errors.ApiError(code, "InternalError", "injected failure")

    @staticmethod
    def _verb(request: web.Request, route: Route) -> str:
        method = request.method
        if method == "GET":
            if route.name:
                return "get"
            return "watch" if request.query.get("watch") in _TRUE else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise errors.ApiError(400, "BadRequest", "the request body is not JSON") from None

    async def _dispatch(self, verb: str, request: web.Request, route: Route) -> tuple[int, Any]:
        rt, ns, name, sub = route.rt, route.namespace or "", route.name, route.subresource
        if sub and not (sub == "status" and rt.status) and not (sub == "binding" and rt.gr == "pods"):
            raise errors.ApiError(404, "NotFound", f"the server could not find the requested resource ({sub})")
        if verb == "get":
            return 200, self.store.get(rt, ns, name)
        if verb == "list":
            return 200, self._list(request, route)
        if verb == "create" and sub == "binding":
            return 201, await self._bind(rt, ns, name, await self._body(request))
        if verb == "create":
            if name:
                raise errors.ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            body = self._admit(rt, await self._body(request), "")
            if rt.status and rt.gr not in ("pods", "nodes"):  # nodes keep all fields on create
                body.pop("status", None)
            if rt.gr == "pods":
                body["status"] = {"phase": "Pending"}
                self._admit_priority(body)
            obj = await self.store.create(rt, ns, body)
            if rt.plural == "customresourcedefinitions":
                for served in from_crd(obj):
                    self._serve(served)
            return 201, obj
        if verb == "update":
            body = self._admit(rt, await self._body(request), sub)
            return 200, await self.store.replace(rt, ns, name, body, subresource=sub)
        if verb == "patch":
            current = self.store.get(rt, ns, name)
            body = await self._body(request)
            patched = patch.apply_patch(request.headers.get("Content-Type", ""), current, body, custom=rt.custom)
            if "resourceVersion" not in ((body.get("metadata") or {}) if isinstance(body, dict) else {}):
                patched.setdefault("metadata", {}).pop("resourceVersion", None)
            patched = self._admit(rt, patched, sub)
            return 200, await self.store.replace(rt, ns, name, patched, subresource=sub)
        if verb == "delete":
            options = await self._body(request)
            if "gracePeriodSeconds" in request.query:
                options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
            obj, gone = await self.store.delete(rt, ns, name, options)
            if rt.gr == "pods" or not gone:
                return 200, obj
            return 200, errors.status_body(200, "", "", {"name": name, "kind": rt.plural, "uid": obj["metadata"]["uid"]})
        raise errors.ApiError(405, "MethodNotAllowed", f"{verb} is not supported")

    def _admit(self, rt: ResourceType, body: Any, subresource: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.ApiError(400, "BadRequest", "the body must be an object")
        if rt.schema is None:
            return body
        name = (body.get("metadata") or {}).get("name", "")
        pruned, problems = schema.check(body, rt.schema)
        if not problems:
            problems = cel.validate(pruned, rt.schema)
        if problems:
            raise errors.invalid(rt.gr, name, "; ".join(problems))
        return pruned

    def _admit_priority(self, pod: dict[str, Any]) -> None:
        """The Priority admission plugin: spec.priority comes from the PriorityClass."""
        spec = pod.setdefault("spec", {})
        classes = self.store.list(self.resource("scheduling.k8s.io", "priorityclasses"), None)
        name = spec.get("priorityClassName")
        if name:
            found = [c for c in classes if c["metadata"]["name"] == name]
            if not found:
                raise errors.ApiError(403, "Forbidden", f'pods is forbidden: no PriorityClass with name {name} was found')
            value = int(found[0].get("value") or 0)
        else:
            defaults = [c for c in classes if c.get("globalDefault")]
            value = int(defaults[0].get("value") or 0) if defaults else 0
        if spec.get("priority") is not None and spec["priority"] != value:
            raise errors.ApiError(
                403,
                "Forbidden",
                f"pods is forbidden: the integer value of priority ({spec['priority']}) must not be provided in pod spec; "
                f"priority admission controller computed {value} from the given PriorityClass name",
            )
        spec["priority"] = value

    def _list(self, request: web.Request, route: Route) -> dict[str, Any]:
        match = self._matcher(request)
        items = [o for o in self.store.list(route.rt, route.namespace) if match(o)]
        return {
            "kind": f"{route.rt.kind}List",
            "apiVersion": route.rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": items,
        }

    @staticmethod
    def _matcher(request: web.Request):
        by_label = selectors.label_selector(request.query.get("labelSelector", ""))
        by_field = selectors.field_selector(request.query.get("fieldSelector", ""))
        return lambda obj: by_label(obj) and by_field(obj)

    async def _bind(self, rt: ResourceType, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        target = (body.get("target") or {}).get("name")
        if not target:
            raise errors.invalid("Binding", name, "target.name: Required value")
        pod = self.store.get(rt, ns, name)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict(rt.gr, name, "the pod is being deleted")
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            raise errors.conflict(rt.gr, name, f"pod {name} is already assigned to node {node!r}")
        pod["spec"]["nodeName"] = target
        conditions = [c for c in (pod.get("status") or {}).get("conditions", []) if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()})
        pod.setdefault("status", {})["conditions"] = conditions
        pod["metadata"].pop("resourceVersion", None)
        stored = self.store.objects[(rt.gr, ns, name)]
        prev = copy.deepcopy(stored)
        stored["spec"] = pod["spec"]
        stored["status"] = pod["status"]
        self.store._bump(stored)
        await self.store._record(rt, "MODIFIED", stored, prev)
        return errors.status_body(201, "", "", None) | {"status": "Success"}

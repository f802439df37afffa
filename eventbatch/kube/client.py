"""The API-server client: kubernetes_asyncio APIs, raw JSON in and out, with retries.

Where it sits: below every kube component. ``connect`` loads a kubeconfig
(or the in-cluster service account); ``Kube.call`` invokes a generated
kubernetes_asyncio API method with ``_preload_content=False`` and returns the
decoded JSON, raising ``ApiException`` for an error status (the generated
models are skipped: the adapter decodes into ``schemas`` types itself, and
the Binding call's Status reply would not deserialize anyway). ``Kube.lines``
streams a watch as decoded JSON events.

Patches always name their content type: ``merge`` for custom objects (a real
server refuses the JSON-patch default of ``CustomObjectsApi`` for a dict
body), ``strategic`` where core objects accept it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.backoff import Backoff, retry

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


async def connect(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for ``kubeconfig``, else $KUBECONFIG / ~/.kube/config, else in-cluster."""
    if kubeconfig or os.environ.get("KUBECONFIG") or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return await config.new_client_from_config(config_file=kubeconfig or None)
    config.load_incluster_config()
    return client.ApiClient()


class Kube:
    """The typed API groups eventbatch uses, called for raw JSON."""

    def __init__(self, api: client.ApiClient, *, backoff: Backoff | None = None, request_timeout: float = 30.0) -> None:
        self.api = api
        self.backoff = backoff or Backoff()
        self.request_timeout = request_timeout  # seconds, per request (a watch: per read)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)
        self.scheduling = client.SchedulingV1Api(api)
        self.node = client.NodeV1Api(api)  # RuntimeClasses

    async def close(self) -> None:
        await self.api.close()

    async def call(self, method, *args: Any, retries: bool = True, **kwargs: Any) -> dict[str, Any]:
        """``method(*args, **kwargs)`` as decoded JSON; transient failures retried."""

        kwargs.setdefault("_request_timeout", self.request_timeout)

        async def once() -> dict[str, Any]:
            response = await method(*args, _preload_content=False, **kwargs)
            try:
                data = await response.read()
                if response.status >= 400:
                    raise api_error(response.status, response.reason, data)
            finally:
                response.release()
            return json.loads(data) if data else {}

        if not retries:
            return await once()
        return await retry(once, self.backoff, what=getattr(method, "__name__", "call"))

    async def lines(self, method, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request, until the server ends it."""
        # No total timeout: a watch lasts; but a read that waits longer than the server's
        # own timeout (plus the request timeout) means a dead connection.
        read = float(kwargs.get("timeout_seconds") or 0) + self.request_timeout
        response = await method(
            *args, watch=True, _preload_content=False, _request_timeout=(self.request_timeout, read), **kwargs
        )
        try:
            if response.status >= 400:
                raise api_error(response.status, response.reason, await response.read())
            while line := await response.content.readline():
                if line.strip():
                    yield json.loads(line)
        finally:
            response.release()


def api_error(status: int, reason: str | None, body: bytes) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    # The stubs declare bytes; the adapter's errors carry the server's text as str (read in messages and tests).
    exc.body = body.decode("utf-8", "replace")  # type: ignore[assignment]  # str where the stubs say bytes
    return exc


class Connection:
    """One ``Kube`` per process, connected on first use and shared by every component."""

    def __init__(self, kubeconfig: str | None = None, *, kube: Kube | None = None) -> None:
        self.kubeconfig = kubeconfig
        self._kube = kube
        self._lock: asyncio.Lock | None = None

    async def get(self) -> Kube:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._kube is None:
                self._kube = Kube(await connect(self.kubeconfig))
        return self._kube

    async def close(self) -> None:
        if self._kube is not None:
            await self._kube.close()
            self._kube = None

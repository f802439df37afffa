"""Fixtures of the kube tests: a running fake API server, a kubeconfig for it, a client.

``apiserver`` serves on a loopback port with short bookmark intervals;
``crds`` creates the committed CRDs of the default API groups
(``deploy/crds/volcano``) in it, as ``kubectl apply`` would; ``kube`` is eventbatch's client, connected through the kubeconfig
file the fixture wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import yaml

from eventbatch.kube.client import Connection, Kube
from eventbatch.settings import DEFAULT_API_GROUPS
from tests.kube.apiserver import ApiServer

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "deploy" / "crds"  # one folder per choice of API groups
CRD_DIR = CRDS / DEFAULT_API_GROUPS


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with ApiServer(bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig", user="admin")


@pytest.fixture
async def connection(kubeconfig: Path) -> AsyncIterator[Connection]:
    conn = Connection(str(kubeconfig))
    yield conn
    await conn.close()


@pytest.fixture
async def kube(connection: Connection) -> Kube:
    return await connection.get()


async def apply_crds(kube: Kube, api_groups: str = DEFAULT_API_GROUPS) -> None:
    from kubernetes_asyncio import client

    ext = client.ApiextensionsV1Api(kube.api)
    for path in sorted((CRDS / api_groups).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        await kube.call(ext.create_custom_resource_definition, yaml.safe_load(path.read_text()))


@pytest.fixture
async def crds(kube: Kube) -> Kube:
    await apply_crds(kube)
    return kube


# polls to its deadline and fails naming what it waited for
async def eventually(check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 10.0, what: str = "") -> None:  # noqa: ASYNC109
    """Wait until ``check()`` is true, polling; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.02)

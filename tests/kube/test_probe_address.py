"""The unauthenticated probe and metrics port listens on 127.0.0.1 unless told otherwise.

A real ``eventbatch serve --cluster kube`` subprocess against the API-server
fake: the socket it listens on (read from ``/proc/net/tcp``, the kernel's own
table) is bound to 127.0.0.1 by default and to the address
``--probe-address`` names (what the Deployment sets to the pod IP), never to
every interface; an address that is not one is a one-line error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, eventually
from tests.kube.processes import FAST, start

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the kernel's socket table")


def listening(pid: int, port: int) -> set[str]:
    """The local addresses of every listening TCP socket of ``pid``'s network namespace on ``port``."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(".".join(str(b) for b in raw[::-1]))
                else:  # IPv6: four little-endian 32-bit words
                    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                    import ipaddress

                    found.add(str(ipaddress.IPv6Address(b"".join(words))))
    return found


async def probe_port(process) -> int:
    await eventually(lambda: re.search(r"probes listening port=(\d+)", process.log_text()) is not None, timeout=30)
    return int(re.search(r"probes listening port=(\d+)", process.log_text())[1])


@pytest.mark.slow
@pytest.mark.parametrize("address", [None, "127.0.0.2"], ids=["default", "pod-ip"])
async def test_serve_listens_for_probes_on_loopback_by_default_and_on_the_address_given(
    address: str | None, apiserver: ApiServer, crds, tmp_path: Path
) -> None:
    args = ["--log", f"sqlite:///{tmp_path / 'events.db'}", "serve", "--cluster=kube", *FAST,
            "--leader-elect-identity=eventbatch"]
    if address is not None:
        args.append(f"--probe-address={address}")
    process = await start("serve", args, apiserver=apiserver, workdir=tmp_path, user="eventbatch")
    try:
        port = await probe_port(process)
        assert listening(process.proc.pid, port) == {address or "127.0.0.1"}, process.log_text()[-2000:]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{address or '127.0.0.1'}:{port}/healthz") as response:
                assert response.status == 200
    finally:
        await process.stop()


def test_a_probe_address_that_is_not_an_ip_address_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBATCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{tmp_path / 'events.db'}", "serve",
         "--cluster=kube", "--kubeconfig", str(tmp_path / "none"), "--probe-address=everywhere"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "eventbatch: error: argument --probe-address: 'everywhere' is not an IP address "
        "(e.g. 127.0.0.1, the pod IP, or 0.0.0.0 for every interface) (see `eventbatch serve --help`)"
    ]
    assert not (tmp_path / "events.db").exists()

"""Real ``eventbatch`` subprocesses for the kube end-to-end tests.

Where it sits: the end-to-end tests run ``python -m eventbatch serve
--cluster kube`` (on a SQLite log) and ``python -m eventbatch kubelet-sim``
as the user would, against the API-server fake in the test process, each
with its own kubeconfig user so the fake's audit tells who did what.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.kube.apiserver import ApiServer

ROOT = Path(__file__).resolve().parents[2]

FAST = [
    "--leader-elect-namespace=default",
    # Long enough that a renewal slowed by a loaded CI machine does not cost the lease.
    "--lease-duration=5",
    "--renew-deadline=4",
    "--retry-period=0.3",
    "--watch-timeout=5",
    "--probe-port=0",
]


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    output: Path

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=5)
            except TimeoutError:
                self.proc.kill()
        return await self.proc.wait()

    def log_text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""


async def start(name: str, args: list[str], *, apiserver: ApiServer, workdir: Path, user: str) -> Process:
    kubeconfig = apiserver.write_kubeconfig(workdir / f"kubeconfig-{user}", user=user)
    output = workdir / f"{name}.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVENTBATCH_DEBOUNCE_MS": "20", "EVENTBATCH_LOG_LEVEL": "INFO"}
    env.pop("KUBECONFIG", None)
    with output.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventbatch", *args, f"--kubeconfig={kubeconfig}",
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    return Process(name, proc, output)


async def serve(
    name: str, *, apiserver: ApiServer, workdir: Path, log_url: str, user: str, args: Sequence[str] = ()
) -> Process:
    return await start(
        name, ["--log", log_url, "serve", "--cluster=kube", *args, *FAST, f"--leader-elect-identity={user}"],
        apiserver=apiserver, workdir=workdir, user=user,
    )


async def kubelet_sim(*, apiserver: ApiServer, workdir: Path) -> Process:
    return await start(
        "kubelet-sim", ["kubelet-sim", "--startup=0.2", "--watch-timeout=5"], apiserver=apiserver, workdir=workdir, user="kubelet-sim"
    )


@contextlib.asynccontextmanager
async def serving(
    *, apiserver: ApiServer, workdir: Path, log_url: str, args: Sequence[str] = ()
) -> AsyncIterator[tuple[Process, Process]]:
    """kubelet-sim and ``serve --cluster kube`` (user "eventbatch") running for the block:
    their output printed if the block fails, both stopped after it."""
    sim = await kubelet_sim(apiserver=apiserver, workdir=workdir)
    eb = await serve("serve", apiserver=apiserver, workdir=workdir, log_url=log_url, user="eventbatch", args=args)
    try:
        yield eb, sim
    except BaseException:
        print(eb.log_text()[-4000:], sim.log_text()[-2000:])
        raise
    finally:
        await eb.stop()
        await sim.stop()

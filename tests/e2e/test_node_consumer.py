"""The Node.js example consumer (``examples/consumers/node``) against the real broker.

``npm ci`` installs its locked dependencies once per test session (the only
network this needs: the npm registry). A workload runs through eventbatch
(``eventbatch simulate`` on a Kafka topic) while the consumer follows the
topic in a consumer group; what it prints is compared with the job phase
changes read back from the log by eventbatch itself. Restarted in the same
group it prints nothing again; a fresh group reads everything again, and a
record that breaks the published schema is reported and fails its exit code.

Under ``CI=true`` a machine without ``node`` and ``npm`` fails these tests
(``.ci/run`` installs them); elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from eventbatch.log.factory import open_log
from schemas.events import JobPhaseChanged

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "examples" / "consumers" / "node"
DEADLINE_S = 90.0
SESSION_TIMEOUT_MS = "3000"  # the test broker holds a first JoinGroup for half of it

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SCENARIO = """\
nodes:
- {prefix: node-, count: 1, allocatable: {cpu: 2, memory: 16Gi}}
queues:
- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}
workload:
- at: 0s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: first, namespace: default}
    spec:
      minAvailable: 1
      tasks:
      - {name: main, replicas: 1, template: {metadata: {annotations: {eventbatch.io/sim-duration: 30s}}, spec: {containers: [{name: c, image: x, resources: {requests: {cpu: "2"}}}]}}}
- at: 5s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: second, namespace: default}
    spec:
      minAvailable: 1
      tasks:
      - {name: main, replicas: 1, template: {metadata: {annotations: {eventbatch.io/sim-duration: 30s}}, spec: {containers: [{name: c, image: x, resources: {requests: {cpu: "2"}}}]}}}
until: all-finished
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def node_consumer() -> Path:
    """The example's directory with its locked dependencies installed (``npm ci``, once a session)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"no {' or '.join(missing)} on PATH (.ci/run installs Debian's nodejs and npm)"
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return NODE_DIR


class Running:
    """The consumer as a child process, its stdout and stderr collected line by line as they come."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            ["node", "consumer.js", *args], cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._collect, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]  # a text pipe
            into.append(line.rstrip("\n"))

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not ready():
            if self.process.poll() is not None and not ready():
                self.finish()
                raise AssertionError(f"the consumer exited ({self.process.returncode}) before {what}: {self.err}")
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"no {what} in {DEADLINE_S}s: stdout {self.out}, stderr {self.err}")
            time.sleep(0.05)

    def finish(self, timeout: float = DEADLINE_S) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code


def consume(topic_args: list[str], *extra: str) -> Running:
    return Running([*topic_args, "--session-timeout", SESSION_TIMEOUT_MS, *extra])


def phase_lines(url: str) -> list[str]:
    """The lines the consumer should print, from the log as eventbatch reads it (without the record key)."""

    async def read() -> list[str]:
        lines = []
        async with open_log(url) as log:
            async for envelope in log.read(0):
                event = envelope.payload
                if isinstance(event, JobPhaseChanged):
                    reason = f" ({event.reason})" if event.reason else ""
                    lines.append(f"#{envelope.position} {event.job} {event.previous or '-'} -> {event.phase}{reason}")
        return lines

    return asyncio.run(read())


def without_key(lines: list[str]) -> list[str]:
    """The lines with a record key dropped; each key there names its line's job."""
    out = []
    for line in lines:
        head, _, key = line.partition(" key=")
        if key:
            assert head.split()[1] in key, line
        out.append(head)
    return out


def test_the_node_consumer_follows_validates_and_prints_phase_changes_in_order(
    node_consumer: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    url = f"kafka://{kafka_bootstrap}/{topic}"
    schema = tmp_path / "payloads.schema.json"
    exported = subprocess.run([sys.executable, "-m", "eventbatch", "schema", "events"], capture_output=True, text=True, cwd=ROOT)
    assert exported.returncode == 0, exported.stderr
    schema.write_text(exported.stdout)
    scenario = tmp_path / "two-jobs.yaml"
    scenario.write_text(SCENARIO)

    async def create_topic() -> None:
        async with open_log(url) as log:  # start() makes the topic
            assert await log.end_position() == 0

    asyncio.run(create_topic())
    args = ["--brokers", kafka_bootstrap, "--topic", topic]  # the schema: docs/schema/events.schema.json

    # 1. The consumer follows the empty topic in its group; the workload runs while it does.
    live = consume(args, "--group", "phases")
    live.wait_for("group join", lambda: any(line.startswith("joined group phases") for line in live.err))
    simulated = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, "simulate", str(scenario)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert simulated.returncode == 0, simulated.stderr
    expected = phase_lines(url)
    assert [line.split(" -> ")[1].split()[0] for line in expected] == [
        "Pending", "Running", "Pending", "Completed", "Running", "Completed"
    ]
    assert [line.split()[1] for line in expected] == ["default/first"] * 2 + ["default/second", "default/first"] + ["default/second"] * 2
    live.wait_for("six phase changes", lambda: len(live.out) >= len(expected))
    live.process.send_signal(signal.SIGTERM)
    assert live.finish() == 0, live.err
    assert without_key(live.out) == expected
    assert re.search(r"^\d+ events: \d+ valid, 0 invalid, 0 unknown; 6 phase changes$", live.err[-1]), live.err

    # 2. Started again in the same group, it goes on after what it committed: nothing twice.
    again = consume(args, "--group", "phases", "--to-end")
    assert again.finish() == 0, again.err
    assert again.out == []
    assert again.err[-1] == "0 events: 0 valid, 0 invalid, 0 unknown; 0 phase changes"

    # 3. A record that breaks the schema, and one of a type the schema does not know, appended raw.
    bad = {"type": "JobPhaseChanged", "key": "default/third", "recorded_at": 1, "payload": {"type": "JobPhaseChanged", "job": "default/third"}}
    newer = {"type": "JobTeleported", "key": "default/third", "recorded_at": 1, "payload": {"type": "JobTeleported", "job": "default/third"}}

    async def plant() -> int:
        async with open_log(url) as log:
            await log.append_raw([json.dumps(bad).encode(), json.dumps(newer).encode()])
            return await log.end_position()

    end = asyncio.run(plant())

    # 4. A fresh group reads the whole topic: the same lines, every other record valid, the bad one
    # reported; against the published record schema (the default) and the payload schemas alone.
    for group, schema_args in (("audit", []), ("audit-payloads", ["--schema", str(schema)])):
        fresh = consume(args, "--group", group, "--to-end", *schema_args)
        assert fresh.finish() == 1, fresh.err
        assert without_key(fresh.out) == expected
        assert f"invalid #{end - 2} JobPhaseChanged: payload: / must have required property 'phase'" in fresh.err
        assert f"unknown event type JobTeleported at #{end - 1}: skipped" in fresh.err
        assert fresh.err[-1] == f"{end} events: {end - 2} valid, 1 invalid, 1 unknown; 6 phase changes"


def test_the_node_consumer_reads_a_log_whose_record_batches_are_zstd_compressed(
    node_consumer: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A log opened with ?compression=zstd writes compressed record batches, which kafkajs
    reads only with a codec: the consumer registers one and prints the same phase changes."""
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    url = f"kafka://{kafka_bootstrap}/{topic}?compression=zstd"
    scenario = tmp_path / "two-jobs.yaml"
    scenario.write_text(SCENARIO)
    simulated = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, "simulate", str(scenario)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert simulated.returncode == 0, simulated.stderr
    expected = phase_lines(url)
    assert len(expected) == 6

    read = consume(["--brokers", kafka_bootstrap, "--topic", topic], "--group", "zstd", "--to-end")
    assert read.finish() == 0, read.err
    assert without_key(read.out) == expected
    assert re.search(r"^\d+ events: \d+ valid, 0 invalid, 0 unknown; 6 phase changes$", read.err[-1]), read.err


def test_the_node_consumer_refuses_bad_arguments_in_one_line(node_consumer: Path, tmp_path: Path) -> None:
    for args, message in (
        (["--topic", "t"], "consumer: error: --brokers is required"),
        (["--brokers", "127.0.0.1:1", "--topic", "t", "--schema", str(tmp_path / "none.json")], "consumer: error: cannot read the schema"),
        (["--brokers", "127.0.0.1:1", "--topic", "t", "--session-timeout", "5"], "consumer: error: --session-timeout"),
        (["--brokers", "127.0.0.1:1", "--topic", "t", "--schema", str(ROOT / "pyproject.toml")], "consumer: error: the schema"),
    ):
        result = subprocess.run(
            ["node", "consumer.js", *args], cwd=node_consumer, capture_output=True, text=True, timeout=60, env={**os.environ, "KAFKA_BROKERS": ""}
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr

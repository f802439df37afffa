"""The command line checks a request before it appends it: the user's view of refusals.

A real ``eventbatch`` subprocess on a real SQLite log; between commands the
real pipeline (handlers, scheduler, simulated kubelet on a virtual clock)
answers what was appended, as ``serve`` would. A request the read models
know to be refused exits 2 with one line and appends nothing; ``--force``
appends it anyway and the handler refuses it on the log.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventbatch.app import open_pipeline
from eventbatch.clock import VirtualClock
from eventbatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

QUEUES = """\
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: default}
spec: {weight: 1, reclaimable: true}
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: research}
spec: {weight: 1}
"""

NODE = """\
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
"""


def job(name: str = "train", *, replicas: int = 2, queue: str = "research", image: str = "x",
        priority: str = "", duration: str = "1h") -> str:
    pc = f"\n  priorityClassName: {priority}" if priority else ""
    return f"""\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  minAvailable: 1
  queue: {queue}{pc}
  tasks:
    - name: worker
      replicas: {replicas}
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: {duration}}}}}
        spec:
          containers: [{{name: c, image: {image}, resources: {{requests: {{cpu: "1"}}}}}}]
"""


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = tmp / "events.db"
        self.files = 0

    def file(self, text: str) -> str:
        self.files += 1
        path = self.tmp / f"m{self.files}.yaml"
        path.write_text(text)
        return str(path)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{self.log}", *args],
            cwd=self.tmp, capture_output=True, text=True, timeout=120,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def refused(self, *args: str) -> str:
        before = self.types()
        result = self(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("eventbatch: error: "), result.stderr
        assert "Traceback" not in result.stderr
        assert self.types() == before, "a refused command appended to the log"
        return lines[0]

    def events(self) -> list[dict]:
        out = self.ok("events", "tail", "-o", "json")
        return [json.loads(line) for line in out.splitlines()]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()] if self.log.exists() else []

    def settle(self) -> None:
        """Let the pipeline answer everything on the log, as ``serve`` does."""

        async def run() -> None:
            settings = Settings(log_url=f"sqlite:///{self.log}", cluster="sim", sim_startup_ms=0)
            pipeline = await open_pipeline(settings, clock=VirtualClock(0))
            try:
                await pipeline.settle()
            finally:
                await pipeline.close()

        asyncio.run(run())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.ok("apply", "-f", cli.file(QUEUES))
    cli.ok("apply", "-f", cli.file(NODE))
    cli.settle()
    return cli


def test_commands_on_objects_nobody_knows_append_nothing(cli: Cli) -> None:
    assert "job default/nosuchjob not found" in cli.refused("job", "suspend", "nosuchjob")
    assert "job default/nosuchjob not found" in cli.refused("job", "delete", "nosuchjob")
    assert "queue nosuchq not found" in cli.refused("queue", "operate", "nosuchq", "--action", "close")
    assert "queue nosuchq not found" in cli.refused("queue", "delete", "nosuchq")


def test_apply_of_a_node_adds_it_once(cli: Cli) -> None:
    assert "NodeAdded" in cli.types()
    assert "node n1 exists" in cli.refused("apply", "-f", cli.file(NODE))


def test_force_appends_and_the_handler_refuses_on_the_log(cli: Cli) -> None:
    cli.ok("job", "suspend", "nosuchjob", "--force")
    cli.ok("queue", "delete", "nosuchq", "--force")
    cli.settle()
    answers = [(e["type"], e["key"]) for e in cli.events()[-4:]]
    assert ("JobCommandRefused", "default/nosuchjob") in answers
    assert ("QueueRequestRefused", "nosuchq") in answers


def test_a_namespaced_job_name_is_one_key(cli: Cli) -> None:
    cli.ok("apply", "-f", cli.file(job()))
    cli.settle()
    out = cli.ok("job", "suspend", "default/train")
    assert "for default/train" in out
    assert cli.events()[-1]["key"] == "default/train"


def test_a_job_naming_an_unknown_queue_or_priority_class_is_refused(cli: Cli) -> None:
    line = cli.refused("apply", "-f", cli.file(job(queue="nosuch")))
    assert "spec.queue: queue nosuch does not exist" in line
    line = cli.refused("apply", "-f", cli.file(job(priority="gold")))
    assert "spec.priorityClassName: priority class gold does not exist" in line
    cli.ok("apply", "-f", cli.file(job(priority="system-cluster-critical")))


def test_a_job_into_a_closed_queue_is_refused(cli: Cli) -> None:
    cli.ok("queue", "operate", "research", "--action", "close")
    cli.settle()
    assert "queue research is Closed" in cli.refused("apply", "-f", cli.file(job()))


def test_a_queue_and_its_jobs_in_one_file_are_accepted(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    out = cli.ok("apply", "-f", cli.file(QUEUES + "---\n" + job()))
    assert out.splitlines()[-1] == "JobSubmitRequested default/train at #2"


def test_apply_of_a_changed_job_is_an_update_and_of_the_same_job_unchanged(cli: Cli) -> None:
    cli.ok("apply", "-f", cli.file(job(replicas=3)))
    cli.settle()
    assert cli.ok("apply", "-f", cli.file(job(replicas=3))).strip() == "Job default/train unchanged"
    out = cli.ok("apply", "-f", cli.file(job(replicas=4)))
    assert out.startswith("JobUpdateRequested default/train at #")
    cli.settle()
    assert "JobUpdated" in cli.types()
    line = cli.refused("apply", "-f", cli.file(job(replicas=4, image="other")))
    assert "cannot update" in line and "tasks[0] (worker) other than replicas" in line
    view = json.loads(cli.ok("job", "view", "train", "-o", "json"))
    assert view["status"]["minAvailable"] == 1


def test_a_refused_transition_is_named(cli: Cli) -> None:
    cli.ok("apply", "-f", cli.file(job()))
    cli.settle()
    assert "only an aborted (suspended) job can be resumed" in cli.refused("job", "resume", "train")
    cli.ok("job", "suspend", "train")
    cli.settle()
    cli.ok("job", "resume", "train")


def test_a_busy_queue_cannot_be_deleted(cli: Cli) -> None:
    cli.ok("apply", "-f", cli.file(job()))
    cli.settle()
    assert "only a Closed queue can be deleted" in cli.refused("queue", "delete", "research")
    cli.ok("queue", "operate", "research", "--action", "close")
    cli.settle()
    line = cli.refused("queue", "delete", "research")
    assert "research is Closing" in line or "podgroup" in line
    assert "queue default cannot be deleted" in cli.refused("queue", "delete", "default")


def test_a_queue_update_cannot_move_it(cli: Cli) -> None:
    moved = QUEUES.replace("spec: {weight: 1}", "spec: {weight: 1, parent: default}")
    assert "spec.parent cannot change" in cli.refused("apply", "-f", cli.file(moved))
    heavier = QUEUES.replace("spec: {weight: 1}", "spec: {weight: 3}")
    out = cli.ok("apply", "-f", cli.file(heavier))
    assert "Queue default unchanged" in out and "QueueUpdateRequested research" in out
    cli.settle()
    queues = {q["queue"]: q for q in json.loads(cli.ok("queue", "list", "-o", "json"))}
    assert queues["research"]["weight"] == 3


def test_a_duplicate_create_with_force_leaves_the_weight(cli: Cli) -> None:
    heavy = QUEUES.replace("spec: {weight: 1}", "spec: {weight: 7}").split("---\n")[1]
    cli.ok("queue", "create", "-f", cli.file(heavy), "--force")
    cli.settle()
    assert cli.events()[-1]["type"] == "QueueRequestRefused"
    queues = {q["queue"]: q for q in json.loads(cli.ok("queue", "list", "-o", "json"))}
    assert queues["research"]["weight"] == 1

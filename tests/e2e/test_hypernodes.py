"""HyperNodes through the command line: scenarios, apply -f, replay.

The same scenario with network tiers as node labels and as HyperNode objects
gets the same scheduling decisions; a HyperNode manifest that breaks
admission is refused at the edge with nothing appended; replay --verify
reproduces the hypernode controller's decisions.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import msgspec

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "network-topology.yaml"


def eventbatch(*args: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def events_of(log: Path) -> list[Envelope]:
    async def read() -> list[Envelope]:
        async with open_log(f"sqlite:///{log}") as opened:
            out: list[Envelope] = []
            await read_to_tail(opened, 0, out.append)
            return out

    return asyncio.run(read())


def labelled(text: str) -> str:
    """The example with its HyperNodes taken out and the same tiers given as node labels."""
    text = re.sub(r"  - at: 0s\n    apply:\n      apiVersion: topology.*?(?=  - at: [1-9])", "", text, flags=re.S)
    text = text.replace("{name: network-topology-aware}",
                        "{name: network-topology-aware, arguments: {tiers: [switch, spine]}}")
    for node, switch in (("a-0", "s-a"), ("a-1", "s-a"), ("b-0", "s-b"), ("b-1", "s-b")):
        text = re.sub(rf"(name: {node}, allocatable: \{{[^}}]*\}})(, labels: \{{)?",
                      rf"\1, labels: {{switch: {switch}, spine: spine, " if "b-" in node else
                      rf"\1, labels: {{switch: {switch}, spine: spine}}", text)
    return text


def decisions(log: Path) -> list[tuple[str, dict]]:
    """The scheduler's decisions in log order, the network domain's name left out of messages."""
    out = []
    for envelope in events_of(log):
        if envelope.causation is None or envelope.causation.handler != "scheduler":
            continue
        fields = msgspec.to_builtins(envelope.payload)
        if isinstance(fields.get("message"), str):
            fields["message"] = re.sub(r"network domain \([^)]*\)", "network domain (...)", fields["message"])
        out.append((envelope.type, fields))
    return out


SECOND_JOB = """
  - at: 2s
    apply:
      apiVersion: batch.volcano.sh/v1alpha1
      kind: Job
      metadata: {name: second, namespace: default}
      spec:
        minAvailable: 3
        networkTopology: {mode: hard, highestTierAllowed: 1}
        tasks:
          - name: worker
            replicas: 3
            template:
              metadata: {annotations: {eventbatch.io/sim-duration: 1m}}
              spec: {containers: [{name: w, image: busybox, resources: {requests: {cpu: "2"}}}]}
"""


def test_tiers_as_labels_and_as_hypernodes_get_the_same_scheduling_decisions(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("until: all-finished", SECOND_JOB.strip("\n") + "\nuntil: all-finished")
    hyper, label = tmp_path / "hyper.yaml", tmp_path / "label.yaml"
    hyper.write_text(text)
    label.write_text(labelled(text))
    assert "kind: HyperNode" not in label.read_text() and "switch: s-b, spine: spine, rack: b" in label.read_text()
    for scenario in (hyper, label):
        result = eventbatch("simulate", str(scenario), log=tmp_path / f"{scenario.stem}.db")
        assert result.returncode == 0, result.stderr[-2000:]
    first, second = decisions(tmp_path / "hyper.db"), decisions(tmp_path / "label.db")
    bound = {f["pod"]: f["node"] for t, f in first if t == "PodBound"}
    assert len(bound) == 7
    # each job within one switch; the second (6 cpus) waits for the first's switch... or takes the other one
    assert {bound[f"default/allreduce-worker-{i}"][0] for i in range(4)} in ({"a"}, {"b"})
    assert len({bound[f"default/second-worker-{i}"][0] for i in range(3)}) == 1
    assert first == second


def test_a_hypernode_breaking_admission_is_refused_at_the_edge_with_nothing_appended(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    bad = tmp_path / "bad.yaml"
    bad.write_text("""apiVersion: topology.volcano.sh/v1alpha1
kind: HyperNode
metadata: {name: s0}
spec:
  tier: 1
  members:
  - {type: Node, selector: {exactMatch: {name: n0}, regexMatch: {pattern: "^n"}}}
""")
    result = eventbatch("apply", "-f", str(bad), log=log)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "HyperNode s0" in result.stderr and "only one of exactMatch, regexMatch or labelMatch" in result.stderr
    assert not log.exists() or events_of(log) == []

    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().replace(', regexMatch: {pattern: "^n"}', ""))
    result = eventbatch("apply", "-f", str(good), log=log)
    assert result.returncode == 0, result.stderr
    assert [e.type for e in events_of(log)] == ["HyperNodeApplyRequested"]


def test_replay_verifies_the_hypernode_controller(tmp_path: Path) -> None:
    log = tmp_path / "sim.db"
    assert eventbatch("simulate", str(EXAMPLE), log=log).returncode == 0
    answers = [e.type for e in events_of(log) if e.causation and e.causation.handler == "hypernode-controller"]
    assert answers == ["HyperNodeAdded"] * 3
    verify = eventbatch("replay", "--verify", "--scenario", str(EXAMPLE), log=log)
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]

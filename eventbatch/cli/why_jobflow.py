"""``eventbatch why`` for a JobFlow or one of its steps: which step waits, and for what.

Where it sits: beside ``eventbatch.cli.why`` (which calls it while it reads
the log once). It folds the log with the JobFlow controller's own fold
(``handlers.jobflow``), so what it says is what the controller would decide
on: each step's Job and its phase, or what the step waits for (a
dependency's Job and the phase it is in now, a missing JobTemplate, a Job
the job controller refused). A name that is neither a JobFlow nor the Job of
a step not yet submitted is left to the job explanation.
"""

from __future__ import annotations

from handlers.jobflow.handler import REQUIRED_PHASE, FlowRecord, JobFlowHandler, JobFlowsState, waiting
from schemas.envelope import Envelope
from schemas.events import JobFlowRefused
from schemas.jobflow import targets_of


class Flows:
    """The JobFlow controller's state folded from the log, and the refusals it decided."""

    def __init__(self) -> None:
        self.handler = JobFlowHandler()
        self.state: JobFlowsState = self.handler.initial()
        self.refused: dict[str, Envelope] = {}

    def observe(self, env: Envelope) -> None:
        self.state = self.handler.fold(self.state, env)
        if isinstance(env.payload, JobFlowRefused):
            self.refused[env.payload.jobflow] = env

    def explain(self, key: str) -> list[str] | None:
        """Lines about JobFlow ``key``, or about the step whose Job is ``key`` while it has
        none; None when ``key`` is neither."""
        record = self.state.flows.get(key)
        if record is not None:
            return self._flow(record)
        for record in self.state.flows.values():
            for flow in record.manifest.spec.flows:
                if record.step_job(flow.name) == key and key not in self.state.jobs:
                    return self._step(record, flow.name, header=True)
        if key in self.refused and key not in self.state.jobs:
            env = self.refused[key]
            assert isinstance(env.payload, JobFlowRefused)
            return [f"jobflow {key} was refused at #{env.position}: {env.payload.reason}",
                    "  nothing was created; fix the manifest and apply it again"]
        return None

    def _flow(self, record: FlowRecord) -> list[str]:
        spec = record.manifest.spec
        policy = spec.job_retain_policy or "retain"
        lines = [f"jobflow {record.key} is {record.phase or 'Pending'}: {len(spec.flows)} step(s), "
                 f"jobRetainPolicy {policy}"]
        for flow in spec.flows:
            lines.extend(self._step(record, flow.name, header=False))
        return lines

    def _step(self, record: FlowRecord, step: str, *, header: bool) -> list[str]:
        job = record.step_job(step)
        phase = self.state.jobs.get(job)
        if phase is not None:
            return [f"  {step}: Job {job} is {phase or 'created'}"]
        if step in record.submitted:
            return [f"  {step}: Job {job} submitted, not created yet"]
        flow = next(f for f in record.manifest.spec.flows if f.name == step)
        reasons = waiting(self.state, record, step)
        if header:
            after = ", ".join(targets_of(flow)) or "nothing"
            lines = [f"{job} is step {step} of jobflow {record.key} (after: {after}); "
                     f"its Job is not submitted yet. It waits for:"]
            lines.extend(f"  - {r}" for r in reasons)
            lines.append(f"  a step's Job is submitted once every dependency's Job is {REQUIRED_PHASE}")
            return lines
        return [f"  {step}: waits for {r}" for r in reasons] or [f"  {step}: Job {job} not submitted yet"]

"""A Job with only ``metadata.generateName`` is named by the job controller, as the API server would name it,
but from the request's log position instead of random characters."""

from __future__ import annotations

import re

import pytest

from handlers.job.names import ALPHABET, generated_name
from projections.jobs import new_record
from schemas.events import JobCreated, JobSubmitRefused, PodGroupCreated, PodRequested
from schemas.loaders import ManifestError
from tests.unit.job.driver import Loop, job_from_yaml, of

GENERATED = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {generateName: PREFIX, namespace: team}
spec:
  tasks:
  - name: sleeper
    replicas: 2
    template: {spec: {containers: [{name: c, image: x}]}}
"""


def _job(prefix: str = "test-job-"):
    return job_from_yaml(GENERATED.replace("PREFIX", prefix))


def test_the_controller_names_the_job_prefix_plus_five_characters_and_records_it() -> None:
    loop = Loop()
    out = loop.submit(_job())
    (created,) = of(out, JobCreated)
    assert re.fullmatch(f"team/test-job-[{ALPHABET}]{{5}}", created.job)
    name = created.job.split("/")[1]
    assert created.manifest.metadata.name == name
    assert created.manifest.metadata.generate_name == "test-job-"  # kept, as the API server keeps it
    (group,) = of(out, PodGroupCreated)
    assert group.job == created.job
    pods = of(loop.enqueue(created.job), PodRequested)
    assert [p.pod for p in pods] == [f"team/{name}-sleeper-0", f"team/{name}-sleeper-1"]


def test_the_name_is_the_same_on_every_replay_and_differs_by_position() -> None:
    first, second = Loop(), Loop()
    a = of(first.submit(_job()), JobCreated)[0].job
    b = of(second.submit(_job()), JobCreated)[0].job
    assert a == b  # the same request at the same position: the same name
    again = of(first.submit(_job()), JobCreated)[0].job  # the same manifest applied again: a second job
    assert again != a
    assert set(first.state.jobs) == {a, again}


def test_a_name_taken_by_a_live_job_is_skipped() -> None:
    loop = Loop()
    loop.submit(_job())  # positions 0.. : the request and its answer
    position = len(loop.log)  # where the next request lands
    taken = generated_name("team", "test-job-", position)
    named = job_from_yaml(GENERATED.replace("generateName: PREFIX", f"name: {taken}"))
    loop.state.jobs[f"team/{taken}"] = new_record(f"team/{taken}", named, loop.log[0])
    out = loop.submit(_job())
    assert loop.log[position].type == "JobSubmitRequested"
    (created,) = of(out, JobCreated)
    assert not of(out, JobSubmitRefused)
    assert created.job == f"team/{generated_name('team', 'test-job-', position, 1)}"


def test_a_long_prefix_is_cut_to_58_characters() -> None:
    name = generated_name("default", "a" * 70, 3)
    assert len(name) == 63 and name.startswith("a" * 58)


@pytest.mark.parametrize(
    ("metadata", "path"),
    [("{generateName: Test_}", "metadata.generateName"), ("{namespace: team}", "metadata.name")],
)
def test_a_bad_prefix_or_neither_name_nor_prefix_is_refused(metadata: str, path: str) -> None:
    with pytest.raises(ManifestError) as refused:
        job_from_yaml(GENERATED.replace("{generateName: PREFIX, namespace: team}", metadata))
    assert refused.value.path == path

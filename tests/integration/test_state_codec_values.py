"""The state codec keeps a frozen schema record whole, and only where that restores it exactly.

A read model's fold state holds every job's manifest (``schemas.resources.Job``):
the codec writes such a frozen ``msgspec.Struct`` as msgspec's own msgpack of it,
and must still give back exactly what was saved: the same types (a tuple stays a
tuple, an int stays an int), one object where the state held one, and a refusal
when the bytes say a record of a class that is not a Struct.
"""

from __future__ import annotations

import msgspec
import pytest

from eventbatch import statecodec
from schemas.resources import Container, Job, JobSpec, ObjectMeta, PodSpec, PodTemplateSpec, TaskSpec


def _job(name: str, extra: dict) -> Job:
    container = Container(name="main", image="busybox", extra=extra)
    task = TaskSpec(name="worker", replicas=2, template=PodTemplateSpec(spec=PodSpec(containers=[container])))
    return Job(metadata=ObjectMeta(name=name, namespace="team-a"), spec=JobSpec(tasks=[task]))


def test_a_manifest_comes_back_equal_and_is_kept_whole() -> None:
    job = _job("train", {"imagePullPolicy": "Always", "stdin": False})
    blob = statecodec.encode({"jobs": {"team-a/train": job}})
    back = statecodec.decode(blob)
    assert back == {"jobs": {"team-a/train": job}}
    # Kept whole: the manifest's own msgpack is in the blob, not one tagged array per field.
    assert msgspec.msgpack.encode(job) in blob


def test_a_manifest_held_twice_is_restored_as_one_object() -> None:
    job = _job("train", {})
    back = statecodec.decode(statecodec.encode([job, {"again": job}]))
    assert back[0] is back[1]["again"] and back[0] == job


@pytest.mark.parametrize(
    "extra",
    [
        {"args": ("a", "b")},  # a tuple msgpack would give back as a list
        {"ttl": 3, "ratio": 0.5, "labels": frozenset({"x"})},  # a frozenset it cannot write at all
        {"when": 2**70},  # an int past 64 bits
    ],
    ids=["tuple", "frozenset", "bigint"],
)
def test_what_msgpack_would_change_is_kept_field_by_field_and_comes_back_exactly(extra: dict) -> None:
    job = _job("odd", extra)
    back = statecodec.decode(statecodec.encode({"job": job}))
    got = back["job"].spec.tasks[0].template.spec.containers[0].extra
    assert got == extra and {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in extra.items()}


def test_bytes_that_keep_a_plain_class_as_a_whole_value_are_refused() -> None:
    from eventbatch.readmodels.projector import ProjectorStats  # a dataclass: never kept whole

    names = ["chunks", "folded", "resumed_from", "seconds", "snapshots"]
    table = [[f"{ProjectorStats.__module__}:{ProjectorStats.__qualname__}", names]]
    whole = [msgspec.msgpack.Ext(10, b""), 0, msgspec.msgpack.encode({"folded": 1})]
    forged = statecodec.MAGIC + msgspec.msgpack.encode([statecodec.VERSION, table, whole, {}])
    with pytest.raises(statecodec.StateCodecError, match="only a Struct"):
        statecodec.decode(forged)

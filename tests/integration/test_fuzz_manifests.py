"""Fuzzing the manifest loader: hostile text is a ``ManifestError`` or a manifest within every limit.

Where it sits: the property test of the edge (``schemas.loaders`` with
``schemas.limits``, ``schemas.decode`` and ``schemas.admission``). Hypothesis
feeds ``load_manifests`` (and ``load_file``, for raw bytes) random structures
as YAML and JSON, integers far beyond int64 (thousands of digits), deep
nesting, long strings, YAML alias bombs and recursive aliases, random bytes,
and real manifests (``examples/demo``, ``tests/unit/schemas/examples.py``)
mutated at a random place, in their text or in their tree. For every input
the loader either raises ``ManifestError`` (whose message is one line, and
short) or returns manifests that keep every limit of ``docs/limits.md``:
encoded size, nesting, string length, int32 and int64 fields, pods per job,
Kubernetes names. No other exception escapes, and each input is handled
within a bounded time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import limits
from schemas.admission_rules import name_problem
from schemas.loaders import ManifestError, load_file, load_manifests
from schemas.resources import Command, Job, Node, PodGroup, Queue
from tests.unit.schemas import examples

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [
    (ROOT / "examples" / "demo" / "mpi-job.yaml").read_text(),
    (ROOT / "examples" / "demo" / "queues.yaml").read_text(),
    examples.MPI_JOB,
    examples.PYTORCH_JOB,
]
SEED_TREES = [doc for text in SEEDS for doc in yaml.safe_load_all(text) if doc]
PER_INPUT_S = 10.0  # generous on a loaded 2-core machine; a bomb used to take minutes and gigabytes

HUGE_INTS = st.one_of(
    st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.sampled_from([10**9, 10**40, -(10**40), 10**4000, -(2**31) - 1]),
    st.integers(),
)
LONG_STRINGS = st.sampled_from(
    [limits.MAX_STRING, limits.MAX_STRING + 1, limits.MAX_LABEL + 1, limits.MAX_NAME + 1]
).map(lambda n: "x" * n)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SCALARS = st.one_of(
    st.none(), st.booleans(), HUGE_INTS, st.floats(allow_nan=False), st.text(max_size=30), LONG_STRINGS,
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def alias_bomb(levels: int, width: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    body = "\n".join("        " + line for line in lines)
    return (
        "apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\nmetadata: {name: bomb}\nspec:\n  tasks:\n"
        "  - replicas: 1\n    template:\n      spec:\n        containers:\n        - {name: c, image: busybox}\n"
        "        bomb:\n" + body + "\n"
    )


def with_kinds(tree: Any, data: st.DataObject) -> Any:
    """Half the random trees get a real apiVersion and kind, so decoding goes past the first field."""
    if isinstance(tree, dict) and data.draw(st.booleans()):
        api, kind = data.draw(st.sampled_from([
            ("batch.volcano.sh/v1alpha1", "Job"), ("scheduling.volcano.sh/v1beta1", "Queue"),
            ("bus.volcano.sh/v1alpha1", "Command"), ("scheduling.volcano.sh/v1beta1", "PodGroup"), ("v1", "Node"),
        ]))
        return {**tree, "apiVersion": api, "kind": kind}
    return tree


def mutate_tree(tree: Any, data: st.DataObject) -> Any:
    """``tree`` with one randomly chosen node replaced by a hostile value."""
    hostile = data.draw(st.one_of(SCALARS, TREES, st.integers(0, 200).map(nested)))
    if not isinstance(tree, (dict, list)) or not tree or data.draw(st.integers(0, 4)) == 0:
        return hostile
    if isinstance(tree, dict):
        key = data.draw(st.sampled_from(sorted(tree, key=str)))
        return {**tree, key: mutate_tree(tree[key], data)}
    i = data.draw(st.integers(0, len(tree) - 1))
    return [*tree[:i], mutate_tree(tree[i], data), *tree[i + 1:]]


def mutate_text(text: str, data: st.DataObject) -> str:
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 20))
    insert = data.draw(st.one_of(
        st.text(max_size=10), st.sampled_from(["&a ", "*a", "<<: *a\n", "[" * 300, "9" * 5000, "\t", "\x00", "{", "\ud800"]),
    ))
    return text[:at] + insert + text[at + cut:]


def as_text(tree: Any, data: st.DataObject) -> str:
    if data.draw(st.booleans()):
        return json.dumps(tree)
    try:
        return yaml.dump(tree, Dumper=DUMPER, sort_keys=False)
    except (yaml.YAMLError, ValueError, RecursionError):
        return json.dumps(tree)


# --- what every accepted manifest keeps ----------------------------------------------------


def _walk(value: Any, depth: int = 0) -> None:
    assert depth <= limits.MAX_DEPTH + 8, "nesting over the limit got through"
    if isinstance(value, str):
        assert len(value) <= limits.MAX_STRING
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        pass
    elif isinstance(value, int):
        assert limits.INT64[0] <= value <= limits.INT64[1]
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(k, depth + 1)
            _walk(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk(v, depth + 1)


def _int32(*values: int | None) -> None:
    for value in values:
        assert value is None or limits.INT32[0] <= value <= limits.INT32[1]


def check_within_limits(manifest: Any) -> None:
    assert len(msgspec.json.encode(manifest)) <= limits.MAX_OBJECT_BYTES
    _walk(msgspec.to_builtins(manifest))
    if isinstance(manifest, Job):
        spec = manifest.spec
        assert sum(t.replicas for t in spec.tasks) <= limits.MAX_PODS_PER_JOB
        _int32(spec.min_available, spec.min_success, spec.max_retry, spec.ttl_seconds_after_finished)
        for task in spec.tasks:
            assert 0 <= task.replicas <= limits.MAX_PODS_PER_JOB
            _int32(task.min_available, task.max_retry)
        assert not name_problem(manifest.metadata.name, subdomain=True)
        assert not name_problem(manifest.metadata.namespace)
    elif isinstance(manifest, Queue):
        _int32(manifest.spec.weight, manifest.spec.priority)
        assert not name_problem(manifest.metadata.name, subdomain=True)
    elif isinstance(manifest, Command):
        target = manifest.target_object
        assert target is not None and not name_problem(target.name, subdomain=True)
    elif isinstance(manifest, PodGroup):
        assert manifest.spec.min_member <= limits.MAX_PODS_PER_JOB
    elif isinstance(manifest, Node):
        assert not name_problem(manifest.metadata.name, subdomain=True)
    for value in manifest.metadata.labels.values():
        assert len(value) <= limits.MAX_LABEL


def load(text: str) -> None:
    started = time.monotonic()
    try:
        manifests = load_manifests(text, source="fuzz.yaml")
    except ManifestError as exc:
        message = str(exc)
        assert "\n" not in message, message[:300]
        assert len(message) < 2000, "an error names the size of a huge value, not the value"
    else:
        for manifest in manifests:
            check_within_limits(manifest)
    assert time.monotonic() - started < PER_INPUT_S


# --- the properties ------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_random_structures(data):
    load(as_text(with_kinds(data.draw(TREES), data), data))


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_mutated_examples(data):
    seed = data.draw(st.sampled_from(SEED_TREES))
    load(as_text(mutate_tree(seed, data), data))


@pytest.mark.slow
@FUZZ
@given(st.data())
def test_mutated_example_text(data):
    load(mutate_text(data.draw(st.sampled_from(SEEDS)), data))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3000), st.sampled_from(["json", "yaml-flow", "yaml-block"]))
def test_deep_nesting(depth, form):
    if form == "json":
        text = "[" * depth + "1" + "]" * depth
    elif form == "yaml-flow":
        text = "a: " + "[" * depth + "1" + "]" * depth
    else:
        text = "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 400))) + "  " * min(depth, 400) + "x: 1\n"
    load(text)


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(1, 12))
def test_alias_bombs(levels, width):
    load(alias_bomb(levels, width))


def test_recursive_alias_and_many_aliases():
    with pytest.raises(ManifestError, match="recursive"):
        load_manifests("a: &a [*a]\n")
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (limits.MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(ManifestError, match=f"more than {limits.MAX_ALIASES} YAML aliases"):
        load_manifests(many)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes(tmp_path, blob):
    path = tmp_path / "random.yaml"
    path.write_bytes(blob)
    try:
        for manifest in load_file(path):
            check_within_limits(manifest)
    except ManifestError as exc:
        assert len(str(exc)) < 2000

"""A job whose tasks' ``dependsOn`` form a cycle is refused with that cycle; any other is admitted.

For any dependency graph among a job's tasks: a refusal names a cycle that is
really in the manifest (each task depends on the next, back to the first) at
the ``dependsOn`` of its first task, the same cycle every time; an admitted
job's tasks can all be started in some order.
"""

from __future__ import annotations

import json
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.loaders import ManifestError, load_manifests

PREFIX = "tasks depend on each other in a cycle: "
NAMES = [f"t{i}" for i in range(6)]


def job(deps: dict[str, list[str]]) -> str:
    tasks = []
    for name in NAMES:
        task = {"name": name, "replicas": 1, "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
        if deps.get(name):
            task["dependsOn"] = {"name": deps[name]}
        tasks.append(task)
    return json.dumps({"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"tasks": tasks}})


def startable(deps: dict[str, list[str]]) -> bool:
    waiting = {name: set(deps.get(name, ())) for name in NAMES}
    while waiting:
        ready = [name for name, needs in waiting.items() if not needs & waiting.keys()]
        if not ready:
            return False
        for name in ready:
            del waiting[name]
    return True


graphs = st.fixed_dictionaries(
    {name: st.lists(st.sampled_from([n for n in NAMES if n != name]), unique=True, max_size=3) for name in NAMES}
)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_a_cycle_is_refused_with_a_cycle_in_the_manifest(deps: dict[str, list[str]]) -> None:
    text = job(deps)
    try:
        load_manifests(text)
    except ManifestError as err:
        cycles = [v for v in err.violations if v.reason.startswith(PREFIX)]
        assert len(cycles) == 1, err.violations
        ring = cycles[0].reason.removeprefix(PREFIX).split(" -> ")
        assert len(ring) >= 3 and ring[0] == ring[-1] and len(set(ring[:-1])) == len(ring) - 1
        assert all(b in deps[a] for a, b in pairwise(ring))
        assert cycles[0].path == f"spec.tasks[{NAMES.index(ring[0])}].dependsOn"
        repeated = None
        try:
            load_manifests(text)
        except ManifestError as again:
            repeated = again.violations
        assert repeated == err.violations
        assert not startable(deps)
    else:
        assert startable(deps)

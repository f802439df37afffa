"""fgd: place GPU tasks by a GPU placement policy: FGD (fragmentation gradient descent) or a baseline.

Where it sits: a scheduler plugin (see ``plugins.base``); a node score, and
the device choice on the chosen node (``device_choice``, which the statement
asks before taking devices). The arithmetic is ``plugins.gpu_policies`` over
the session's device arrays (``ssn.devices``, ``handlers.scheduler.devices``)
and the nodes' idle CPU.

Arguments:

- ``fgd.policy``: ``fgd`` (default), ``bestfit``, ``dotproduct``,
  ``gpupacking``, ``gpuclustering`` or ``random`` (the paper's baselines;
  ``binpack`` stays the Volcano plugin of that name);
- ``fgd.weight`` (1): what the 0..100 score is multiplied by;
- ``fgd.seed`` (0): the ``random`` policy's seed.

Scores, 0..100 (higher is better), from each policy's cost: ``fgd``
``100 * sigmoid(-increase / 1000)`` (the increase of the node's expected
fragmentation in milli-GPU, as the simulator maps it, without its rounding);
``bestfit`` and ``dotproduct`` ``100 * (1 - cost)``; ``gpupacking`` and
``gpuclustering`` their own 0..100 scores (a node's kinds of task inferred
from its devices); ``random`` a uniform draw per node, one draw per kind of
task per session (seeded by ``fgd.seed``, the task's requests and the log
position the session was built at). Where the task does not fit: 0. Every
task is scored, with or without GPU, as the paper's simulator does.

The workload distribution FGD needs (``TaskTypes``) is learnt when the
session opens, from the pods the cluster state holds (pending, placed, or
finished and not yet deleted): each pod's CPU and GPU request counted per
distinct (CPU, GPU) type, the most popular types kept until they cover 95% of
the pods. So it changes with every session, as pods arrive and leave, and is
a function of the folded log alone.

A row's score depends on that row (its idle CPU and device row) and on data
fixed for the session, as the session's cached placements require.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from handlers.scheduler.api import NodeArrays, TaskInfo
from handlers.scheduler.conf import ConfError, PluginOption, number
from handlers.scheduler.devices import GpuRequest
from handlers.scheduler.hooks import Rows, Score
from handlers.scheduler.plugins import gpu_policies as gp
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

MAX_NODE_SCORE = 100.0


def learn_workload(ssn: Session) -> gp.TaskTypes:
    """The session's target distribution: the pods of its cluster state, by (CPU, GPU request)."""
    return gp.TaskTypes.learn((pod.requests.get("cpu", 0), pod.gpu) for pod in ssn.state.pods.values())


class FGD(Plugin):
    name = "fgd"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        policy = self.arguments.get("fgd.policy", "fgd")
        if policy not in gp.POLICIES:
            raise ConfError(f"fgd.policy must be one of {', '.join(gp.POLICIES)}, got {policy!r}")
        self.policy = str(policy)
        self.weight = number(self.arguments, "fgd.weight", 1)
        if self.weight < 0:
            raise ConfError("fgd.weight must not be negative")
        self.seed = int(number(self.arguments, "fgd.seed", 0))
        self.workload = gp.EMPTY_WORKLOAD
        self._draws: dict[tuple[tuple[str, int], ...], np.ndarray] = {}
        # (milli, count, cpu) -> (cost, device, [changes seen]): see ``_costs``
        self._kept: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, list[int]]] = {}

    def open(self, ssn: Session) -> None:
        self.ssn = ssn
        self.cpu = ssn.nodes.column("cpu")
        self.position = int(ssn.state.position)
        self._all = np.ones(len(ssn.nodes), dtype=bool)
        self._whole = max(1, len(ssn.nodes) // 4)  # changed rows beyond which all are scored again
        if self.policy == "fgd":
            self.workload = learn_workload(ssn)
        if self.weight > 0:
            self.register(ssn.hooks.node_order, self.score)

    def _arrays(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        """Idle milli-CPU and free device rows of ``rows``."""
        nodes = self.ssn.nodes
        gpu = self.ssn.devices.gpu_free
        cpu = nodes.idle[:, self.cpu] if self.cpu >= 0 else np.zeros(len(nodes), dtype=np.int64)
        if rows is None:
            return cpu, gpu
        if isinstance(rows, int):
            return cpu[rows : rows + 1], gpu[rows : rows + 1]
        return cpu[rows], gpu[rows]

    def _random(self, task: TaskInfo) -> np.ndarray:
        key = tuple(sorted(task.req.items()))
        draw = self._draws.get(key)
        if draw is None:
            salt = zlib.crc32(repr(key).encode())
            draw = np.random.default_rng([self.seed, salt, max(self.position, 0)]).random(len(self.ssn.nodes))
            self._draws[key] = draw
        return draw

    def _costs(self, task: TaskInfo) -> tuple[np.ndarray, np.ndarray]:
        """The policy's cost and device pick for ``task`` on every node, kept per GPU shape
        and CPU of task for the session and caught up with the rows changed since."""
        request: GpuRequest | None = task.gpu
        task_cpu = int(task.req.get("cpu", 0))
        key = (0, 0, task_cpu) if request is None else (request.milli, request.count, task_cpu)
        changes = self.ssn.nodes.changes
        kept = self._kept.get(key)
        cpu, gpu = self._arrays(None)
        if kept is None or len(changes) - kept[2][0] >= self._whole:
            cost, device = gp.scores(self.policy, cpu, gpu, self._all, request, task_cpu, self.workload)
            self._kept[key] = (cost, device, [len(changes)])
            return cost, device
        cost, device, seen = kept
        if seen[0] < len(changes):
            rows = np.unique(np.array(changes[seen[0] :], dtype=np.int64))
            c, d = gp.scores(self.policy, cpu[rows], gpu[rows], self._all[rows], request, task_cpu, self.workload)
            cost[rows] = c
            device[rows] = d
            seen[0] = len(changes)
        return cost, device

    def score(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        if self.policy == "random":
            cpu, gpu = self._arrays(rows)
            draw = self._random(task)
            values = draw if rows is None else draw[np.atleast_1d(rows)]
            fit = gp.scores(
                "bestfit", cpu, gpu, np.ones(len(cpu), dtype=bool), task.gpu, int(task.req.get("cpu", 0)), self.workload
            )[0]
            out = np.where(np.isfinite(fit), MAX_NODE_SCORE * values, 0.0) * self.weight
            return float(out[0]) if isinstance(rows, int) else out
        cost, _ = self._costs(task)
        if isinstance(rows, int):
            return float(self._to_score(cost[rows : rows + 1])[0])
        return self._to_score(cost if rows is None else cost[rows])

    def _to_score(self, cost: np.ndarray) -> np.ndarray:
        fits = np.isfinite(cost)
        safe = np.where(fits, cost, 0.0)
        if self.policy == "fgd":
            value = MAX_NODE_SCORE / (1.0 + np.exp(np.clip(safe / 1000.0, -700, 700)))
        elif self.policy in ("bestfit", "dotproduct"):
            value = MAX_NODE_SCORE * (1.0 - safe)
        else:  # gpupacking, gpuclustering: the negated 0..100 score
            value = -safe
        out: np.ndarray = np.where(fits, value, 0.0) * self.weight
        return out

    def devices(self, task: TaskInfo, node: int, *, future: bool) -> tuple[int, ...] | None:
        """The devices of ``node`` the policy gives ``task`` (on its idle devices, or on
        ``future`` ones: what is being released), or None to leave the choice to the
        default best fit (a request with device memory, which the policies do not weigh,
        or a policy whose device choice is best fit)."""
        request = task.gpu
        if request is None or request.memory or self.policy not in ("fgd", "random"):
            return None
        devices = self.ssn.devices
        free = devices.future[node] if future else devices.gpu_free[node]
        if self.policy == "fgd" and not future:
            cost, device = self._costs(task)  # the pick the node's score was computed with
            return gp.devices_on(free, request, int(device[node])) if np.isfinite(cost[node]) else None
        cpu, _ = self._arrays(node)
        cost, device = gp.scores(
            self.policy,
            cpu,
            free.reshape(1, -1),
            np.ones(1, dtype=bool),
            request,
            int(task.req.get("cpu", 0)) if self.policy == "fgd" else 0,
            self.workload,
            rng_key=zlib.crc32(f"{self.seed}/{task.name}/{self.position}".encode()),
        )
        if not np.isfinite(cost[0]):
            return None
        return gp.devices_on(free, request, int(device[0]))


def device_choice(ssn: Session, task: TaskInfo, node: int, *, future: bool) -> tuple[int, ...] | None:
    """The hook the statement asks before taking GPU devices for ``task`` on ``node``
    (from its idle devices, or from what is being released with ``future``): the devices
    the conf's ``fgd`` plugin chooses, or None when the conf has none or it leaves the
    choice to the default (``devices.pick``, best fit)."""
    for plugin in ssn.plugins:
        if isinstance(plugin, FGD):
            return plugin.devices(task, node, future=future)
    return None

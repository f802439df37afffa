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

Scores are the paper's simulator's integer node scores, 0..100 (higher is
better; ``gpu_policies.scores``): ``fgd`` ``int(100 * sigmoid(-increase /
1000))`` (the least increase of the node's expected fragmentation in
milli-GPU; the device is the first with the node's best score), ``bestfit``
``int(100 * (1 - cost))``, ``dotproduct`` ``int(100 * (1 - dot / 2))``,
``gpupacking`` and ``gpuclustering`` their own classes (a node's kinds of
task inferred from its devices); ``random`` a uniform draw per node, one draw
per kind of task per session (seeded by ``fgd.seed``, the task's requests
and the log position the session was built at). Where the task does not fit:
0. Equal totals go to the node first by name, the scheduler's rule and the
simulator's (its kube-scheduler takes the lowest name among the best). Every
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
# Score this many new states or fewer one at a time in plain Python (``_plain_scores``),
# more with numpy: per state, plain Python costs about 4 us whatever the batch, numpy about
# 80 us a call and 2.5-3 us a state.
PLAIN = 64


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
        # (milli, count, cpu) -> _Kind: see ``_costs``
        self._kept: dict[tuple[int, int, int], _Kind] = {}

    def open(self, ssn: Session) -> None:
        self.ssn = ssn
        self.cpu = ssn.nodes.column("cpu")
        self.position = int(ssn.state.position)
        if self.policy == "fgd":
            self.workload = learn_workload(ssn)
        if self.weight > 0:
            self.register(ssn.hooks.node_order, self.score)
        if self.policy != "random":
            self.states = _States(*self._arrays(None))
        # state id -> its fragmentation before a placement (``gp.PlainState``), for ``fgd``
        self._before: dict[int, gp.PlainState] = {}

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

    def _kind(self, task: TaskInfo) -> _Kind:
        """The policy's cost, score and device pick for ``task`` per node state (``states``),
        kept per GPU shape and CPU of task for the session; the states that appeared since
        the kind last looked (rows the session changed into a state no row was in) are
        scored together (up to ``PLAIN`` of them one at a time in plain Python,
        ``_plain_scores``; more in one numpy call), states gone meanwhile never."""
        request: GpuRequest | None = task.gpu
        task_cpu = int(task.req.get("cpu", 0))
        key = (0, 0, task_cpu) if request is None else (request.milli, request.count, task_cpu)
        states = self.states
        nodes = self.ssn.nodes
        states.sync(nodes.changes, nodes.idle, self.cpu, self.ssn.devices.gpu_free)
        kind = self._kept.get(key)
        if kind is None:
            kind = self._kept[key] = _Kind()
        if kind.done < states.size:
            kind.grow(len(states.cpu))
            if self.policy == "fgd" and states.size - kind.done <= PLAIN:
                self._plain_scores(kind, request, task_cpu)
                return kind
            new = np.arange(kind.done, states.size)
            new = new[states.members[new] > 0]
            if len(new):
                cpu, gpu = states.cpu[new], states.gpu[new]
                c, d = gp.scores(self.policy, cpu, gpu, None, request, task_cpu, self.workload, distinct=True)
                kind.cost[new] = c
                kind.device[new] = d
                kind.score[new] = self._to_score(c)
            kind.done = states.size
        return kind

    def _plain_scores(self, kind: _Kind, request: GpuRequest | None, task_cpu: int) -> None:
        """``_kind``'s scoring of the few states new to ``kind``, one at a time in plain Python
        (``gp.fgd_state``: the same costs and devices as ``gp.scores``), each state's
        fragmentation before a placement computed once for every kind (``_before``)."""
        states, before, weight = self.states, self._before, self.weight
        for g in range(kind.done, states.size):
            if not states.members[g]:
                continue
            key = states.keys[g]
            state = before.get(g)
            if state is None:
                state = before[g] = gp.PlainState(key[0], list(key[1:]), self.workload)
            cost, device = gp.fgd_state(state, request, task_cpu, self.workload)
            kind.cost[g] = cost
            kind.device[g] = device
            kind.score[g] = -cost * weight if cost != np.inf else 0.0
        kind.done = states.size

    def _costs(self, task: TaskInfo) -> tuple[np.ndarray, np.ndarray]:
        """The policy's cost and device pick for ``task`` on every node (see ``_kind``)."""
        kind, gid = self._kind(task), self.states.gid
        return kind.cost[gid], kind.device[gid]

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
        kind, gid = self._kind(task), self.states.gid
        if isinstance(rows, int):
            return float(kind.score[gid[rows]])
        scored: np.ndarray = kind.score[gid if rows is None else gid[rows]]
        return scored

    def _to_score(self, cost: np.ndarray) -> np.ndarray:
        """The node score from the policy's cost (``gp.scores``: minus the simulator's integer
        0..100 score), times the weight; 0 where the task does not fit."""
        fits = np.isfinite(cost)
        out: np.ndarray = np.where(fits, -np.where(fits, cost, 0.0), 0.0) * self.weight
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
            kind = self._kind(task)  # the pick the node's score was computed with
            g = self.states.gid[node]
            return gp.devices_on(free, request, int(kind.device[g])) if np.isfinite(kind.cost[g]) else None
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


class _States:
    """The distinct states (idle milli-CPU, free device row) the session's nodes are in: each
    row's state id (``gid``), each state's CPU and devices, how many rows are in it. Kept up
    to date from the rows the session changed (``NodeArrays.changes``): a changed row joins
    the state it is now in, or a new one; a state no row is in any more is never reused (its
    id stays unused), so a kind's scores of the states it has seen stay true."""

    def __init__(self, cpu: np.ndarray, gpu: np.ndarray) -> None:
        rows = np.concatenate([np.asarray(cpu, dtype=np.int64)[:, None], gpu.astype(np.int64)], axis=1).tolist()
        seen = dict.fromkeys(map(tuple, rows))
        self.keys: list[tuple[int, ...]] = sorted(seen)  # ids in the states' order (numpy.unique's)
        self.index = {k: g for g, k in enumerate(self.keys)}
        size = len(self.keys)
        self.gid: np.ndarray = np.fromiter(map(self.index.__getitem__, map(tuple, rows)), np.int64, len(rows))
        capacity = max(16, 2 * size)
        self.cpu = np.zeros(capacity, dtype=np.int64)
        self.gpu = np.full((capacity, gpu.shape[1]), -1, dtype=gpu.dtype)
        self.members = np.zeros(capacity, dtype=np.int64)
        if size:
            alike = np.array(self.keys, dtype=np.int64)
            self.cpu[:size] = alike[:, 0]
            self.gpu[:size] = alike[:, 1:]
            self.members[:size] = np.bincount(self.gid, minlength=size)
        self.size = size
        self.synced = 0

    def sync(self, changes: list[int], idle: np.ndarray, column: int, gpu: np.ndarray) -> None:
        """Follow the rows changed since the last call (``idle``: the nodes' idle resources,
        ``column`` its CPU column or -1; ``gpu``: the free device rows)."""
        end = len(changes)
        if self.synced == end:
            return
        rows = changes[self.synced :] if end - self.synced == 1 else sorted(set(changes[self.synced :]))
        self.synced = end
        for i in rows:
            cpu = int(idle[i, column]) if column >= 0 else 0
            key = (cpu, *gpu[i].tolist())
            old = int(self.gid[i])
            if self.keys[old] == key:
                continue
            self.members[old] -= 1
            if not self.members[old]:
                del self.index[self.keys[old]]
            g = self.index.get(key)
            if g is None:
                g = self._add(key, cpu, gpu[i])
            self.gid[i] = g
            self.members[g] += 1

    def _add(self, key: tuple[int, ...], cpu: int, gpu: np.ndarray) -> int:
        g = self.size
        if g == len(self.cpu):
            self.cpu = np.concatenate([self.cpu, np.zeros_like(self.cpu)])
            self.gpu = np.concatenate([self.gpu, np.full_like(self.gpu, -1)])
            self.members = np.concatenate([self.members, np.zeros_like(self.members)])
        self.cpu[g] = cpu
        self.gpu[g] = gpu
        self.keys.append(key)
        self.index[key] = g
        self.size = g + 1
        return g


class _Kind:
    """One kind of task's cost, 0..100 score and device pick per state (``_States``), for
    the states ``[0, done)`` (those no row was in any more when it looked: never)."""

    def __init__(self) -> None:
        self.done = 0
        self.cost = np.zeros(0)
        self.score = np.zeros(0)
        self.device = np.zeros(0, dtype=np.int64)

    def grow(self, capacity: int) -> None:
        if len(self.cost) < capacity:
            extra = capacity - len(self.cost)
            self.cost = np.concatenate([self.cost, np.full(extra, np.inf)])
            self.score = np.concatenate([self.score, np.zeros(extra)])
            self.device = np.concatenate([self.device, np.full(extra, -1, dtype=np.int64)])


def device_choice(ssn: Session, task: TaskInfo, node: int, *, future: bool) -> tuple[int, ...] | None:
    """The hook the statement asks before taking GPU devices for ``task`` on ``node``
    (from its idle devices, or from what is being released with ``future``): the devices
    the conf's ``fgd`` plugin chooses, or None when the conf has none or it leaves the
    choice to the default (``devices.pick``, best fit)."""
    plugin = ssn.device_chooser
    return plugin.devices(task, node, future=future) if isinstance(plugin, FGD) else None

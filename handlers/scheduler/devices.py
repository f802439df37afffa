"""GPU devices: what a pod asks of them, what each node's devices hold, as arrays.

Where it sits: shared by the scheduler (``snapshot`` builds a session's
``DeviceArrays``; ``placement`` and the actions test a task's ``GpuRequest``
against them; ``statement`` takes and gives device shares), the cluster
projection (``projections.cluster_pods`` records which device holds which
pod), the placement policies (``plugins.gpu_policies``) and the trace
experiment. Pure functions and plain arrays: no clock, no randomness.

The model: a GPU node holds ``gpu_count`` devices of one ``gpu_model``, each
with ``MILLI`` (1,000) milli-GPU. A pod asks for a share of one device
(``GpuRequest(milli, 1)``, ``0 < milli < 1000``) or for ``count`` whole
devices (``GpuRequest(1000, count)``), optionally with device memory (MiB per
device, where nodes state it).

Layout of the arrays, for a set of nodes in the session's row order:

- ``gpu_free``: ``(nodes, G)`` int32, the free milli-GPU of each device; ``G``
  is the largest device count among the nodes, and a slot beyond a node's own
  device count holds ``-1`` (so it never fits anything, not even 0);
- ``gpu_count``: ``(nodes,)`` int32, each node's device count (0: no GPU);
- ``gpu_model``: ``list[str]``, each node's GPU model ("" when none is named);
- ``mem_free``: ``(nodes, G)`` int64, free device memory in MiB (``UNLIMITED``
  where the node does not state its device memory; -1 beyond the count).

Resource names read (amounts as ``schemas.quantity`` parses them: countable
resources in milli-units):

- ``nvidia.com/gpu``: whole devices (``2`` = two devices); a quantity below
  one (``460m``) is a share of one device; a fractional quantity above one
  (``1500m``) is rounded up to whole devices.
- ``volcano.sh/vgpu-number``: how many devices (each vGPU on a different
  device, as Volcano's deviceshare places them);
  ``volcano.sh/vgpu-cores``: percent of each device's compute (``50`` = 500
  milli-GPU on each device; 100, or absent with no memory asked: the whole
  device); ``volcano.sh/vgpu-memory``: MiB of each device's memory (tested
  against the device's memory where the node states it: its
  ``volcano.sh/vgpu-memory`` allocatable over its devices); memory without
  cores reserves no compute share (HAMi's cores 0), only the memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from projections.cluster_devices import (
    GPU,
    GPU_RESOURCES,
    MILLI,
    MODEL_LABEL,
    UNLIMITED,
    VGPU_CORES,
    VGPU_MEMORY,
    VGPU_NUMBER,
    GpuRequest,
    NodeDevices,
    gpu_request,
    node_device_memory,
    node_gpus,
)

__all__ = [
    "GPU",
    "GPU_RESOURCES",
    "MILLI",
    "MODEL_LABEL",
    "UNLIMITED",
    "VGPU_CORES",
    "VGPU_MEMORY",
    "VGPU_NUMBER",
    "DeviceArrays",
    "GpuRequest",
    "NodeDevices",
    "build_arrays",
    "empty",
    "fits",
    "from_counts",
    "gpu_request",
    "node_device_memory",
    "node_gpus",
    "pick",
    "unfit_message",
]

@dataclass
class DeviceArrays:
    """The devices of a set of nodes (see the module's layout); ``future`` counts what is
    being released as free, less what is promised to pipelined pods."""

    gpu_free: np.ndarray  # (n, G) int32
    gpu_count: np.ndarray  # (n,) int32
    gpu_model: list[str]
    mem_free: np.ndarray  # (n, G) int64
    future: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int32))
    mem_future: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def __post_init__(self) -> None:
        if self.future.shape != self.gpu_free.shape:
            self.future = self.gpu_free.copy()
        if self.mem_future.shape != self.mem_free.shape:
            self.mem_future = self.mem_free.copy()

    @property
    def width(self) -> int:
        return int(self.gpu_free.shape[1])

    # One node's few devices at a time: scalar element updates (a task touches one device,
    # or a few), cheaper than fancy indexing on so small a selection.
    def take(self, i: int, devices: tuple[int, ...], request: GpuRequest) -> None:
        """Node ``i``'s ``devices`` give ``request`` from their free share (and future)."""
        milli, memory = request.milli, request.memory
        free, future = self.gpu_free, self.future
        for d in devices:
            free[i, d] -= milli
            future[i, d] -= milli
            if memory:
                self.mem_free[i, d] -= memory
                self.mem_future[i, d] -= memory

    def give(self, i: int, devices: tuple[int, ...], request: GpuRequest) -> None:
        milli, memory = request.milli, request.memory
        free, future = self.gpu_free, self.future
        for d in devices:
            free[i, d] += milli
            future[i, d] += milli
            if memory:
                self.mem_free[i, d] += memory
                self.mem_future[i, d] += memory

    def reserve(self, i: int, devices: tuple[int, ...], request: GpuRequest) -> None:
        """Promise ``request`` on ``devices`` out of what is being released (future only)."""
        for d in devices:
            self.future[i, d] -= request.milli
            if request.memory:
                self.mem_future[i, d] -= request.memory

    def unreserve(self, i: int, devices: tuple[int, ...], request: GpuRequest) -> None:
        for d in devices:
            self.future[i, d] += request.milli
            if request.memory:
                self.mem_future[i, d] += request.memory


def empty(n: int) -> DeviceArrays:
    """Arrays for ``n`` nodes without GPUs."""
    return DeviceArrays(
        np.zeros((n, 0), dtype=np.int32), np.zeros(n, dtype=np.int32), [""] * n, np.zeros((n, 0), dtype=np.int64)
    )


def fits(free: np.ndarray, mem: np.ndarray, request: GpuRequest) -> np.ndarray:
    """Per row of ``free`` (rows, G): whether ``count`` devices of the row each have
    ``milli`` free (and ``memory``): a share fits one device, never the sum of several.
    Vectorised over rows and devices."""
    if free.shape[1] == 0:
        return np.zeros(free.shape[0], dtype=bool)
    ok = free >= request.milli
    if request.memory:
        ok &= mem >= request.memory
    if request.count == 1:
        return np.asarray(ok.any(axis=1))
    return np.asarray(ok.sum(axis=1) >= request.count)


def pick(free: np.ndarray, mem: np.ndarray, request: GpuRequest) -> tuple[int, ...]:
    """The devices of one node (``free``: (G,)) ``request`` goes to: best fit, the fullest
    devices that fit (least free first, lowest index on ties; whole devices: the lowest
    indices wholly free). Empty when it does not fit. (One row of a few devices: plain
    Python on its values.)"""
    row = free.tolist()
    milli, memory = request.milli, request.memory
    if memory:
        room = mem.tolist()
        idx = [g for g, v in enumerate(row) if v >= milli and room[g] >= memory]
    else:
        idx = [g for g, v in enumerate(row) if v >= milli]
    if len(idx) < request.count:
        return ()
    if request.count == 1:
        return (min(idx, key=lambda g: (row[g], g)),)
    return tuple(sorted(sorted(idx, key=lambda g: (row[g], g))[: request.count]))


def describe_free(free: np.ndarray) -> str:
    """``0.4 + 0.4`` for one node's device row (the devices it has)."""
    return " + ".join(f"{v / MILLI:g}" for v in free.tolist() if v >= 0)


def unfit_message(free: np.ndarray, request: GpuRequest) -> str:
    """Why ``request`` does not fit a node's devices (``free``: its row), in the words ``why`` shows."""
    have = [v for v in free.tolist() if v >= 0]
    if not have:
        return "node has no GPU devices"
    if request.count == 1 and request.shared:
        want = f"{request.milli / MILLI:g} of one GPU"
    elif request.shared:
        want = f"{request.milli / MILLI:g} on each of {request.count} GPUs"
    else:
        want = f"{request.count} whole GPU{'s' if request.count > 1 else ''}"
    return f"insufficient GPU on any one device (free {describe_free(free)} on {len(have)} GPUs; request {want})"


def build_arrays(names: list[str], devices: Mapping[str, NodeDevices]) -> DeviceArrays:
    """The arrays for nodes ``names`` (in that order) from the cluster state's device records
    (``ClusterState.devices``; a node without one has no GPU). ``future``: free plus what
    releasing pods hold, less what pipelined pods are promised."""
    n = len(names)
    rows = [(i, devices[name]) for i, name in enumerate(names) if name in devices and devices[name].count > 0]
    width = max((d.count for _, d in rows), default=0)
    free = np.full((n, width), -1, dtype=np.int32)
    mem = np.full((n, width), -1, dtype=np.int64)
    future = free.copy()
    count = np.zeros(n, dtype=np.int32)
    model = [""] * n
    for i, d in rows:
        f, m, rel, pipe = d.rows()
        free[i, : d.count] = f
        mem[i, : d.count] = m
        future[i, : d.count] = [a + b - c for a, b, c in zip(f, rel, pipe, strict=True)]
        count[i] = d.count
        model[i] = d.model
    return DeviceArrays(free, count, model, mem, future, mem.copy())


def from_counts(counts: list[int], models: list[str] | None = None) -> DeviceArrays:
    """Arrays for nodes with ``counts`` devices each, all free (no device memory stated)."""
    n = len(counts)
    width = max(counts, default=0)
    count = np.array(counts, dtype=np.int32).reshape(n)
    slots = np.arange(width)[None, :] < count[:, None]
    free = np.where(slots, MILLI, -1).astype(np.int32)
    mem = np.where(slots, UNLIMITED, -1).astype(np.int64)
    return DeviceArrays(free, count, list(models) if models is not None else [""] * n, mem)

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
  milli-GPU per device; 100 or absent with no memory asked: the whole device);
  ``volcano.sh/vgpu-memory``: MiB of each device's memory; without cores, the
  share is the memory's fraction of the device's memory, rounded up to a
  milli-GPU (the whole device when the node's device memory is unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

MILLI = 1000
GPU = "nvidia.com/gpu"
VGPU_NUMBER = "volcano.sh/vgpu-number"
VGPU_MEMORY = "volcano.sh/vgpu-memory"
VGPU_CORES = "volcano.sh/vgpu-cores"
MODEL_LABEL = "nvidia.com/gpu.product"
# Device memory not stated by the node: any memory request fits.
UNLIMITED = np.iinfo(np.int64).max // 4
GPU_RESOURCES = (GPU, VGPU_NUMBER, VGPU_MEMORY, VGPU_CORES)


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """``count`` whole devices (``milli`` 1000 each), or one device's share ``milli`` < 1000
    with ``count`` 1; ``memory``: MiB of each device (0: none asked)."""

    milli: int
    count: int
    memory: int = 0

    @property
    def shared(self) -> bool:
        return self.milli < MILLI

    @property
    def total(self) -> int:
        """Milli-GPU in all."""
        return self.milli * self.count


def gpu_request(requests: Mapping[str, int], device_memory: int = 0) -> GpuRequest | None:
    """What a pod with ``requests`` (parsed amounts) asks of GPU devices, or None.

    ``device_memory``: MiB of one device where known (turns a vGPU memory
    request without cores into a share)."""
    vgpus = requests.get(VGPU_NUMBER, 0)
    if vgpus > 0:
        count = max(1, -(-vgpus // MILLI))
        cores = requests.get(VGPU_CORES, 0) // MILLI
        memory = requests.get(VGPU_MEMORY, 0) // MILLI
        if 0 < cores < 100:
            milli = cores * 10
        elif cores == 0 and memory > 0 and device_memory > 0 and memory < device_memory:
            milli = min(MILLI, -(-memory * MILLI // device_memory))
        else:
            milli = MILLI
        if milli < MILLI and count > 1:
            # A share on each of several devices: counted as whole devices would
            # over-promise the others; placed as ``count`` shares is Volcano's, which
            # the one-device model does not hold: take whole devices.
            milli = MILLI
        return GpuRequest(milli, count, memory)
    amount = requests.get(GPU, 0)
    if amount <= 0:
        return None
    if amount < MILLI:
        return GpuRequest(amount, 1)
    return GpuRequest(MILLI, -(-amount // MILLI))


def node_gpus(allocatable: Mapping[str, int]) -> int:
    """How many devices a node with ``allocatable`` holds: its whole ``nvidia.com/gpu``."""
    return allocatable.get(GPU, 0) // MILLI


def node_device_memory(allocatable: Mapping[str, int], count: int) -> int:
    """MiB of memory of each device (``volcano.sh/vgpu-memory`` over the devices), 0 if unknown."""
    total = allocatable.get(VGPU_MEMORY, 0) // MILLI
    return total // count if count > 0 and total > 0 else 0


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


def empty(n: int) -> DeviceArrays:
    """Arrays for ``n`` nodes without GPUs."""
    return DeviceArrays(
        np.zeros((n, 0), dtype=np.int32), np.zeros(n, dtype=np.int32), [""] * n, np.zeros((n, 0), dtype=np.int64)
    )


def fits(free: np.ndarray, mem: np.ndarray, request: GpuRequest) -> np.ndarray:
    """Per row of ``free`` (rows, G): whether ``request`` fits one device (a share) or
    ``count`` devices wholly free (whole devices). Vectorised over rows and devices."""
    if free.shape[1] == 0:
        return np.zeros(free.shape[0], dtype=bool)
    ok = free >= request.milli
    if request.memory:
        ok &= mem >= request.memory
    if request.shared:
        return np.asarray(ok.any(axis=1))
    return np.asarray(ok.sum(axis=1) >= request.count)


def pick(free: np.ndarray, mem: np.ndarray, request: GpuRequest) -> tuple[int, ...]:
    """The devices of one node (``free``: (G,)) ``request`` goes to: best fit, the fullest
    device that fits (lowest index on ties); whole devices: the lowest indices wholly free.
    Empty when it does not fit."""
    ok = free >= request.milli
    if request.memory:
        ok &= mem >= request.memory
    idx = np.flatnonzero(ok)
    if len(idx) < request.count:
        return ()
    if request.shared:
        left = free[idx]
        return (int(idx[int(left.argmin())]),)
    return tuple(int(i) for i in idx[: request.count])


def describe_free(free: np.ndarray) -> str:
    """``0.4 + 0.4`` for one node's device row (the devices it has)."""
    return " + ".join(f"{v / MILLI:g}" for v in free.tolist() if v >= 0)


def unfit_message(free: np.ndarray, request: GpuRequest) -> str:
    """Why ``request`` does not fit a node's devices, in the words ``why`` shows."""
    have = [v for v in free.tolist() if v >= 0]
    if not have:
        return "node has no GPU devices"
    want = f"{request.milli / MILLI:g} of one GPU" if request.shared else f"{request.count} whole GPUs"
    return f"insufficient GPU on any one device: free {describe_free(free)} on {len(have)} GPUs, request {want}"


class NodeDevices:
    """The cluster state's record of one node's devices: per device, the pods on it and their
    (milli, memory MiB)."""

    __slots__ = ("count", "model", "memory", "held")

    def __init__(self, count: int, model: str, memory: int) -> None:
        self.count = count
        self.model = model
        self.memory = memory
        self.held: list[dict[str, tuple[int, int]]] = [{} for _ in range(count)]

    def free(self) -> list[int]:
        return [MILLI - sum(m for m, _ in pods.values()) for pods in self.held]

    def mem_free(self) -> list[int]:
        if not self.memory:
            return [int(UNLIMITED)] * self.count
        return [self.memory - sum(b for _, b in pods.values()) for pods in self.held]


def build_arrays(names: list[str], devices: Mapping[str, NodeDevices], releasing: Mapping[str, NodeDevices] | None = None) -> DeviceArrays:
    """The arrays for nodes ``names`` (in that order) from the cluster state's device records
    (``ClusterState.devices``; a node without one has no GPU). ``releasing``: per node, the
    shares held by pods being released (counted free in ``future``)."""
    n = len(names)
    rows = [(i, devices[name]) for i, name in enumerate(names) if name in devices and devices[name].count > 0]
    width = max((d.count for _, d in rows), default=0)
    free = np.full((n, width), -1, dtype=np.int32)
    mem = np.full((n, width), -1, dtype=np.int64)
    count = np.zeros(n, dtype=np.int32)
    model = [""] * n
    for i, d in rows:
        free[i, : d.count] = d.free()
        mem[i, : d.count] = d.mem_free()
        count[i] = d.count
        model[i] = d.model
    arrays = DeviceArrays(free, count, model, mem)
    if releasing:
        for i, name in enumerate(names):
            rel = releasing.get(name)
            if rel is not None:
                arrays.future[i, : rel.count] += np.array(
                    [sum(m for m, _ in pods.values()) for pods in rel.held], dtype=np.int32
                )
    return arrays


def from_counts(counts: list[int], models: list[str] | None = None) -> DeviceArrays:
    """Arrays for nodes with ``counts`` devices each, all free (no device memory stated)."""
    n = len(counts)
    width = max(counts, default=0)
    count = np.array(counts, dtype=np.int32).reshape(n)
    slots = np.arange(width)[None, :] < count[:, None]
    free = np.where(slots, MILLI, -1).astype(np.int32)
    mem = np.where(slots, UNLIMITED, -1).astype(np.int64)
    return DeviceArrays(free, count, list(models) if models is not None else [""] * n, mem)

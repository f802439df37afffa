"""The cluster state's GPU devices: what a pod asks of them, which device holds which pod.

Where it sits: part of ``projections.cluster``: ``cluster_pods`` records, as
pods are bound, started, released and pipelined, which devices of their node
they hold (``ClusterState.devices``); the scheduler builds its device arrays
from these records (``handlers.scheduler.devices``, which also re-exports
``GpuRequest`` and the resource names). See that module for the model and
how the resource names map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MILLI = 1000
GPU = "nvidia.com/gpu"
VGPU_NUMBER = "volcano.sh/vgpu-number"
VGPU_MEMORY = "volcano.sh/vgpu-memory"
VGPU_CORES = "volcano.sh/vgpu-cores"
MODEL_LABEL = "nvidia.com/gpu.product"
# Device memory not stated by the node: any memory request fits.
UNLIMITED = 2**61
GPU_RESOURCES = (GPU, VGPU_NUMBER, VGPU_MEMORY, VGPU_CORES)


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """``count`` whole devices (``milli`` 1000 each), or one device's share ``milli`` < 1000
    with ``count`` 1. A Volcano vGPU request may also ask ``count`` devices with a share of
    each (``milli`` < 1000, ``count`` > 1); ``memory``: MiB of each device (0: none asked)."""

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


def gpu_request(requests: Mapping[str, int]) -> GpuRequest | None:
    """What a pod with ``requests`` (parsed amounts) asks of GPU devices, or None."""
    vgpus = requests.get(VGPU_NUMBER, 0)
    if vgpus > 0:
        count = max(1, -(-vgpus // MILLI))
        cores = requests.get(VGPU_CORES, 0) // MILLI
        memory = -(-requests.get(VGPU_MEMORY, 0) // MILLI)
        if 0 < cores < 100:
            milli = cores * 10
        elif cores == 0 and memory > 0:
            milli = 0  # no compute share reserved (HAMi's cores 0): the memory is what it holds
        else:
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


class NodeDevices:
    """The cluster state's record of one node's devices: its ``count`` devices of ``model``
    (``memory`` MiB each, 0: not stated) and, per pod holding or promised some,
    ``(devices, milli, memory, how)`` with ``how`` one of ``held``, ``releasing``
    (held, deletion requested) or ``pipelined`` (promised, not yet held)."""

    __slots__ = ("count", "model", "memory", "pods")

    def __init__(self, count: int, model: str, memory: int) -> None:
        self.count = count
        self.model = model
        self.memory = memory
        self.pods: dict[str, tuple[tuple[int, ...], int, int, str]] = {}

    def rows(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """(free milli, free memory, releasing milli, pipelined milli) per device; memory
        ``UNLIMITED`` where not stated (releasing and pipelined memory count as milli do)."""
        count = self.count
        free = [MILLI] * count
        mem = [self.memory if self.memory else int(UNLIMITED)] * count
        rel = [0] * count
        pipe = [0] * count
        for devices, milli, memory, how in self.pods.values():
            for d in devices:
                if d >= count:
                    continue
                if how == "pipelined":
                    pipe[d] += milli
                    continue
                free[d] -= milli
                mem[d] -= memory
                if how == "releasing":
                    rel[d] += milli
        return free, mem, rel, pipe

    def free(self) -> list[int]:
        return self.rows()[0]




def pick_first(node: NodeDevices, request: GpuRequest) -> tuple[int, ...]:
    """Devices for a pod whose bind named none (records from before devices were recorded, or
    a pod started where nobody placed it): best fit, as the scheduler picks (least free first,
    lowest index on ties); () when it fits nowhere (it is then held by the node, not a device)."""
    free, mem, _, _ = node.rows()
    fit = [d for d in range(node.count) if free[d] >= request.milli and (not request.memory or mem[d] >= request.memory)]
    if len(fit) < request.count:
        return ()
    fit.sort(key=lambda d: (free[d], d))
    return tuple(sorted(fit[: request.count]))


def devices_of(
    devices: dict[str, NodeDevices], name: str, allocatable: Mapping[str, int], labels: Mapping[str, str]
) -> NodeDevices | None:
    """Node ``name``'s device record (``ClusterState.devices``), made or brought up to date from
    its allocatable and labels as they are now; None when it holds no GPU."""
    count = node_gpus(allocatable)
    record = devices.get(name)
    if count <= 0:
        if record is not None and not record.pods:
            del devices[name]
            return None
        return record
    memory = node_device_memory(allocatable, count)
    model = labels.get(MODEL_LABEL, "")
    if record is None:
        record = devices[name] = NodeDevices(count, model, memory)
    elif (record.count, record.memory, record.model) != (count, memory, model):
        record.count, record.memory, record.model = count, memory, model
    return record

"""The scheduler's plugins, by the names a scheduler conf uses.

Where it sits: ``Session`` builds one instance of each plugin its conf names,
tier by tier. Each plugin is a policy noun in its own module.
"""

from __future__ import annotations

from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.binpack import Binpack
from handlers.scheduler.plugins.capacity import Capacity
from handlers.scheduler.plugins.conformance import Conformance
from handlers.scheduler.plugins.drf import DRF
from handlers.scheduler.plugins.fgd import FGD
from handlers.scheduler.plugins.gang import Gang
from handlers.scheduler.plugins.locality import DataLocality
from handlers.scheduler.plugins.network_topology import NetworkTopology
from handlers.scheduler.plugins.nodeorder import NodeOrder
from handlers.scheduler.plugins.overcommit import Overcommit
from handlers.scheduler.plugins.predicates import Predicates
from handlers.scheduler.plugins.priority import Priority
from handlers.scheduler.plugins.proportion import Proportion
from handlers.scheduler.plugins.sla import SLA
from handlers.scheduler.plugins.task_topology import TaskTopology

PLUGINS: dict[str, type[Plugin]] = {
    cls.name: cls
    for cls in (
        Priority, Gang, Conformance, DRF, Proportion, Binpack, NodeOrder, Predicates, Overcommit, SLA,
        Capacity, TaskTopology, NetworkTopology, DataLocality, FGD,
    )
}

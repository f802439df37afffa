"""The scheduler configuration: Volcano's scheduler conf format, validated.

Where it sits: read once when the scheduler handler is built (``load_conf`` for
text, ``load_conf_file`` for a path, ``DEFAULT_CONF`` otherwise); every session
opens its plugins and runs its actions from it.

The format is Volcano's::

    actions: "enqueue, allocate, backfill"
    tiers:
    - plugins:
      - name: priority
      - name: gang
        enabledJobReady: true
    configurations:
    - name: enqueue
      arguments:
        inqueue-timeout: 10m

An unknown action or plugin is an error, and so is one Volcano has but this
scheduler does not provide yet: nothing in a conf is silently ignored. drf's
namespace fair share (``enabledNamespaceOrder: true``, the argument
``namespaceWeights``), which Volcano removed in 2023 and now ignores, is
refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from schemas import quantity
from schemas.quantity import QuantityError

AVAILABLE_ACTIONS = ("enqueue", "allocate", "backfill", "preempt", "reclaim", "reserve", "shuffle")
LATER_ACTIONS = ("elect",)

AVAILABLE_PLUGINS = (
    "priority",
    "gang",
    "conformance",
    "drf",
    "proportion",
    "binpack",
    "nodeorder",
    "predicates",
    "overcommit",
    "sla",
    "capacity",
    "task-topology",
    "network-topology-aware",
    "data-locality",
    "fgd",
)
LATER_PLUGINS = (
    "tdm",
    "numaaware",
    "extender",
    "usage",
    "cdp",
    "rescheduling",
    "deviceshare",
    "pdb",
    "resourcequota",
    "nodegroup",
    "capacity-card",
)

# Volcano's per-plugin switches (nil means enabled) and the hook families they gate.
ENABLE_FLAGS = {
    "enabledJobOrder": "job_order",
    "enabledQueueOrder": "queue_order",
    "enabledTaskOrder": "task_order",
    "enabledPredicate": "predicate",
    "enabledNodeOrder": "node_order",
    "enabledJobReady": "job_ready",
    "enabledJobPipelined": "job_pipelined",
    "enabledJobStarving": "job_starving",
    "enabledJobEnqueued": "job_enqueueable",
    "enabledAllocatable": "allocatable",
    "enabledOverused": "overused",
    "enabledPreemptable": "preemptable",
    "enabledReclaimable": "reclaimable",
    "enabledVictim": "victim",
    # Accepted for compatibility; they gate hooks this scheduler has no use for.
    # (``enabledNamespaceOrder: true`` is refused: see ``NAMESPACE_ORDER_REMOVED``.)
    "enabledNamespaceOrder": "namespace_order",
    "enabledHierarchy": "hierarchy",
    "enablePreemptive": "preemptive",
    "enabledBestNode": "best_node",
    "enabledTargetJob": "target_job",
    "enabledReservedNodes": "reserved_nodes",
    "enabledHyperNodeOrder": "hyper_node_order",
    "enabledClusterOrder": "cluster_order",
}


class ConfError(ValueError):
    """A scheduler conf that cannot be used as written."""


# drf's namespace fair share, asked for by a switch or an argument: Volcano removed it in 2023
# (commit 4ee689ac2, "Refactor namespace fairshare function") and current Volcano ignores both
# without a word; a conf asking for it is refused here rather than run without it.
NAMESPACE_ORDER_REMOVED = (
    "namespace fair share was removed from Volcano's drf plugin in 2023 and is not provided here: "
    "drf orders the jobs of a queue by their own dominant share; remove {what}"
)


@dataclass(frozen=True)
class PluginOption:
    name: str
    arguments: dict[str, object] = field(default_factory=dict)
    # hook family -> enabled; a family not named here is enabled.
    switches: dict[str, bool] = field(default_factory=dict)

    def enabled(self, family: str) -> bool:
        return self.switches.get(family, True)


@dataclass(frozen=True)
class Tier:
    plugins: tuple[PluginOption, ...]


@dataclass(frozen=True)
class SchedulerConf:
    actions: tuple[str, ...]
    tiers: tuple[Tier, ...]
    # action name -> arguments (Volcano's ``configurations``)
    configurations: dict[str, dict[str, object]] = field(default_factory=dict)

    def action_arguments(self, action: str) -> dict[str, object]:
        return self.configurations.get(action, {})


def _split_actions(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        names = [str(part).strip() for part in value]
    else:
        raise ConfError(f"actions must be a comma-separated string, got {value!r}")
    names = [n for n in names if n]
    if not names:
        raise ConfError("actions is empty: name at least one of " + ", ".join(AVAILABLE_ACTIONS))
    for name in names:
        if name in LATER_ACTIONS:
            raise ConfError(
                f"action {name!r} is not available in this scheduler yet "
                f"(available: {', '.join(AVAILABLE_ACTIONS)})"
            )
        if name not in AVAILABLE_ACTIONS:
            raise ConfError(f"unknown action {name!r} (available: {', '.join(AVAILABLE_ACTIONS)})")
    if len(set(names)) != len(names):
        raise ConfError(f"an action is listed twice in {', '.join(names)!r}")
    return tuple(names)


def _plugin(raw: object, where: str) -> PluginOption:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ConfError(f"{where}: each plugin needs a name, got {raw!r}")
    name = raw["name"]
    if name in LATER_PLUGINS:
        raise ConfError(
            f"{where}: plugin {name!r} is not available in this scheduler yet "
            f"(available: {', '.join(AVAILABLE_PLUGINS)})"
        )
    if name not in AVAILABLE_PLUGINS:
        raise ConfError(f"{where}: unknown plugin {name!r} (available: {', '.join(AVAILABLE_PLUGINS)})")
    switches: dict[str, bool] = {}
    arguments: dict[str, object] = {}
    for key, value in raw.items():
        if key == "name":
            continue
        if key == "arguments":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfError(f"{where}: arguments of {name!r} must be a mapping")
            arguments = dict(value)
        elif key in ENABLE_FLAGS:
            if value is not None and not isinstance(value, bool):
                raise ConfError(f"{where}: {key} of {name!r} must be true or false, got {value!r}")
            if key == "enabledNamespaceOrder" and value:
                raise ConfError(f"{where}: {key} of {name!r}: " + NAMESPACE_ORDER_REMOVED.format(what=key))
            if value is not None:
                switches[ENABLE_FLAGS[key]] = value
        else:
            raise ConfError(f"{where}: unknown field {key!r} in plugin {name!r}")
    if name == "drf" and "namespaceWeights" in arguments:
        what = "the argument namespaceWeights"
        raise ConfError(f"{where}: argument namespaceWeights of 'drf': " + NAMESPACE_ORDER_REMOVED.format(what=what))
    return PluginOption(name=name, arguments=arguments, switches=switches)


def conf_from_dict(raw: object) -> SchedulerConf:
    if not isinstance(raw, dict):
        raise ConfError("a scheduler conf is a mapping with 'actions' and 'tiers'")
    unknown = set(raw) - {"actions", "tiers", "configurations", "metrics"}
    if unknown:
        raise ConfError(f"unknown field(s) in scheduler conf: {', '.join(sorted(unknown))}")
    if "actions" not in raw:
        raise ConfError("scheduler conf has no 'actions'")
    actions = _split_actions(raw["actions"])
    tiers: list[Tier] = []
    seen: set[str] = set()
    for t, tier in enumerate(raw.get("tiers") or []):
        if not isinstance(tier, dict) or not isinstance(tier.get("plugins"), list):
            raise ConfError(f"tier {t + 1}: expected a mapping with a 'plugins' list")
        plugins = tuple(_plugin(p, f"tier {t + 1}") for p in tier["plugins"])
        for option in plugins:
            if option.name in seen:
                raise ConfError(f"plugin {option.name!r} appears twice")
            seen.add(option.name)
        tiers.append(Tier(plugins))
    if {"capacity", "proportion"} <= seen:
        raise ConfError("plugins 'capacity' and 'proportion' both set the queues' shares: configure one of them")
    configurations: dict[str, dict[str, object]] = {}
    for entry in raw.get("configurations") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfError(f"configurations: each entry needs a name, got {entry!r}")
        if entry["name"] not in AVAILABLE_ACTIONS:
            raise ConfError(f"configurations: {entry['name']!r} is not an available action")
        configurations[entry["name"]] = dict(entry.get("arguments") or {})
    return SchedulerConf(actions=actions, tiers=tuple(tiers), configurations=configurations)


def load_conf(text: str) -> SchedulerConf:
    """Parse a Volcano scheduler conf (YAML text); ``ConfError`` says what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfError(f"scheduler conf is not valid YAML: {exc}") from None
    return conf_from_dict(raw)


def load_conf_file(path: str) -> SchedulerConf:
    with open(path, encoding="utf-8") as handle:
        return load_conf(handle.read())


DEFAULT_CONF_TEXT = """\
actions: "enqueue, allocate, backfill"
tiers:
- plugins:
  - name: priority
  - name: gang
  - name: conformance
- plugins:
  - name: overcommit
  - name: drf
  - name: predicates
  - name: proportion
  - name: nodeorder
  - name: binpack
"""

DEFAULT_CONF = load_conf(DEFAULT_CONF_TEXT)


# --- argument values ---------------------------------------------------------

def duration_argument_ms(value: object) -> int:
    """Milliseconds of a duration argument of the conf: a Go duration (``"90s"``, ``"1h30m"``)
    or a plain YAML number, which counts seconds.

    Not a second duration parser: the string is read by ``schemas.quantity.parse_duration``
    (exact, a partial millisecond dropped); what this adds is the conf's reading of an
    argument: a number is seconds, there is no sign, an empty one is 0, and a bad one is a
    ``ConfError``.
    """
    if isinstance(value, bool):
        raise ConfError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        return int(value * 1000)
    text = str(value).strip()
    if text == "":
        return 0
    try:
        if text[0] in "+-":
            raise QuantityError(f"{text!r} is not a duration")
        return quantity.parse_duration(text, "ms")
    except QuantityError as exc:
        if "too long" in str(exc):
            raise ConfError(str(exc)) from None
        raise ConfError(f"{value!r} is not a duration (expected e.g. '90s', '10m', '1h30m')") from None


def number(arguments: dict[str, object], key: str, default: float) -> float:
    value = arguments.get(key, default)
    if isinstance(value, (int, float, str, bytes)):  # what ``float`` reads (YAML's true is 1)
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfError(f"argument {key}: {value!r} is not a number")


def flag(arguments: dict[str, object], key: str, default: bool) -> bool:
    value = arguments.get(key, default)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ConfError(f"argument {key}: {value!r} is not true or false")

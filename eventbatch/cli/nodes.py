"""``eventbatch node add|cordon|uncordon|drain|remove|list``: a simulated cluster's nodes.

Where it sits: the user's edge for nodes. Each command appends one request
(``NodeAddRequested``, ``NodeCordonRequested``, ``NodeDrainRequested``,
``NodeRemoveRequested``); the node controller in ``serve`` answers it with
facts or a refusal (``handlers.node``). ``node list`` reads the NodeView
read model. The read models are asked first: a node they do not know (or,
for ``add``, one they do) is an error and nothing is appended, unless
``--force``. On ``--cluster kube`` (or ``EVENTBATCH_CLUSTER=kube``) nodes come
from the API server: every command but ``list`` is refused, pointing to
kubectl. ``node_request`` is what ``apply -f`` appends for a v1 Node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from eventbatch.cli import CliError, views
from eventbatch.cli.intents import manifests_of
from eventbatch.cli.output import LIST_OUTPUTS, emit, table
from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from schemas.admission_rules import name_problem
from schemas.envelope import Envelope
from schemas.events import (
    NodeAddRequested,
    NodeCordonRequested,
    NodeDrainRequested,
    NodeRemoveRequested,
)
from schemas.events.base import Event
from schemas.loaders import ManifestError, admit
from schemas.resources import Node, NodeSpec, NodeStatus, ObjectMeta, Taint

KUBECTL = {"add": "kubectl apply -f", "cordon": "kubectl cordon", "uncordon": "kubectl uncordon",
           "drain": "kubectl drain", "remove": "kubectl delete node"}
REQUESTS = {
    "cordon": lambda name: NodeCordonRequested(node=name, unschedulable=True),
    "uncordon": lambda name: NodeCordonRequested(node=name, unschedulable=False),
    "drain": lambda name: NodeDrainRequested(node=name),
    "remove": lambda name: NodeRemoveRequested(node=name),
}
HELP = {"cordon": "mark a node unschedulable", "uncordon": "mark a node schedulable again",
        "drain": "cordon a node and evict every pod on it", "remove": "remove a node; its pods fail (NodeLost)"}


def register(commands) -> None:
    node = commands.add_parser("node", help="add, cordon, drain and remove the nodes of a simulated cluster")
    sub = node.add_subparsers(dest="node_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add nodes: v1 Node manifests (-f) or one node from flags (--name)")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("-f", "--filename", help="YAML or JSON file of v1 Node manifests")
    source.add_argument("--name", help="the node's name (with --cpu, --memory, ...)")
    add.add_argument("--cpu", default="8", help="allocatable cpu (default 8)")
    add.add_argument("--memory", default="32Gi", help="allocatable memory (default 32Gi)")
    add.add_argument("--gpu", default="0", help="allocatable nvidia.com/gpu (default 0)")
    add.add_argument("--pods", default="110", help="allocatable pods (default 110)")
    add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    add.add_argument("--taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT")
    _common(add)
    add.set_defaults(run=_add)
    for verb, text in HELP.items():
        act = sub.add_parser(verb, help=text)
        act.add_argument("name")
        _common(act)
        act.set_defaults(run=_request, verb=verb)
    listing = sub.add_parser("list", help="nodes with their status, pods and resources (NodeView)")
    listing.add_argument("-o", "--output", choices=LIST_OUTPUTS, default="text", help="wide adds USED")
    views.add_views_flag(listing)
    listing.set_defaults(run=_list)


def _common(parser) -> None:
    parser.add_argument("--force", action="store_true", help="append the request whatever the read models say")
    parser.add_argument("--cluster", choices=["sim", "kube", "none"],
                        help="the cluster serve runs (env EVENTBATCH_CLUSTER); kube refuses node commands")
    views.add_views_flag(parser)


def check_cluster(cluster: str, verb: str, name: str = "NAME") -> None:
    if cluster == "kube":
        raise CliError(f"nodes of a kube cluster come from the API server: use kubectl ({KUBECTL[verb]} {name})")


def node_request(manifest: Node, cluster: str | None = None) -> NodeAddRequested:
    """The request ``apply -f`` appends for a v1 Node (refused on a kube cluster)."""
    if cluster is None:
        from eventbatch.settings import Settings

        cluster = Settings.from_env().cluster
    check_cluster(cluster, "add", manifest.metadata.name)
    return NodeAddRequested(node=manifest.metadata.name, manifest=manifest)


def node_from_flags(args) -> Node:
    """One node from ``--name``, ``--cpu``, ... checked like a manifest."""
    allocatable = {"cpu": args.cpu, "memory": args.memory, "pods": args.pods}
    if args.gpu not in ("", "0"):
        allocatable["nvidia.com/gpu"] = args.gpu
    labels = {"kubernetes.io/hostname": args.name}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    taints = []
    for item in args.taint:
        pair, sep, effect = item.rpartition(":")
        key, _, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--taint {item!r}: expected KEY[=VALUE]:EFFECT")
        taints.append(Taint(key=key, value=value, effect=effect))
    node = Node(
        metadata=ObjectMeta(name=args.name, labels=labels),
        spec=NodeSpec(taints=taints),
        status=NodeStatus(capacity=allocatable, allocatable=dict(allocatable)),
    )
    try:
        admitted = admit(node, source="node add")
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    assert isinstance(admitted, Node)  # admit gives back the kind it is given (typed as any manifest)
    return admitted


async def _known(settings, given: str | None) -> set[str]:
    async with views.current_store(settings, given) as store:
        return {row.name for row in await store.rows("node_view")}


async def _append(settings, events: Sequence[Event]) -> list[int]:
    now = SystemClock().now()
    async with open_log(settings.log_url) as log:
        return await log.append([Envelope.wrap(e, recorded_at=now) for e in events])


async def _add(args, settings) -> int:
    cluster = args.cluster or settings.cluster
    check_cluster(cluster, "add", args.name or f"-f {args.filename}")
    if args.filename:
        manifests = [m for _, m in manifests_of(args.filename, only="Node")]
    else:
        manifests = [node_from_flags(args)]
    if not args.force:
        known = await _known(settings, args.views)
        there = [m.metadata.name for m in manifests if m.metadata.name in known]
        if there:
            raise CliError(f"node {there[0]} already exists (--force to ask anyway)")
    events = [node_request(m, cluster) for m in manifests]
    for event, position in zip(events, await _append(settings, events), strict=True):
        print(f"NodeAddRequested {event.node} at #{position}")
    return 0


async def _request(args, settings) -> int:
    check_cluster(args.cluster or settings.cluster, args.verb, args.name)
    problem = name_problem(args.name, subdomain=True, what="node name")
    if problem:
        raise CliError(problem)
    if not args.force and args.name not in await _known(settings, args.views):
        raise CliError(f"node {args.name} not found (--force to ask anyway)")
    [position] = await _append(settings, [REQUESTS[args.verb](args.name)])
    print(f"{args.verb} of node {args.name} requested at #{position}")
    return 0


def status_of(unschedulable: bool) -> str:
    """kubectl's STATUS column for a node the cluster reports Ready."""
    return "Ready,SchedulingDisabled" if unschedulable else "Ready"


def _quantities(text: str) -> str:
    return ",".join(f"{k}={v}" for k, v in json.loads(text).items()) or "-"


async def _list(args, settings) -> int:
    async with views.current_store(settings, args.views) as store:
        rows = await store.rows("node_view", order="name")
    if args.output in ("json", "yaml"):
        emit([{"name": r.name, "status": status_of(bool(r.unschedulable)), "unschedulable": bool(r.unschedulable),
               "pods": r.pods, "allocatable": json.loads(r.allocatable), "idle": json.loads(r.idle),
               "used": json.loads(r.used)} for r in rows], args.output)
        return 0
    wide = args.output == "wide"
    table(["NAME", "STATUS", "PODS", "ALLOCATABLE", "IDLE", *(["USED"] if wide else [])],
          [[r.name, status_of(bool(r.unschedulable)), r.pods, _quantities(r.allocatable), _quantities(r.idle),
            *([_quantities(r.used)] if wide else [])] for r in rows])
    return 0

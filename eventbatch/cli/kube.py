"""``eventbatch crds`` and ``eventbatch kubelet-sim``: the Kubernetes side commands.

Where it sits: beside ``serve --cluster kube``. ``crds`` prints (or writes)
the CustomResourceDefinitions generated from ``schemas``, in the API groups
chosen (``--api-groups``, ``EVENTBATCH_API_GROUPS``) — the source of
``deploy/crds/volcano`` and ``deploy/crds/eventbatch``. ``kubelet-sim`` runs the KWOK-like kubelet
(``eventbatch.kube.kubelet_sim``) against any API server.
"""

from __future__ import annotations

from pathlib import Path

from eventbatch.cli import CliError
from schemas.limits import INT32, IntArg


def register(commands) -> None:
    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions (deploy/crds/<groups>)")
    crds.add_argument("--output-dir", help="write one file per CRD into this directory instead of printing")
    crds.add_argument(
        "--api-groups",
        choices=["volcano", "eventbatch"],
        help="'volcano' (batch/scheduling/bus/flow.volcano.sh; the default, env EVENTBATCH_API_GROUPS) "
        "or 'eventbatch' (*.eventbatch.io)",
    )
    crds.set_defaults(run=_crds)
    sim = commands.add_parser("kubelet-sim", help="move bound pods to Running, then Succeeded/Failed, on any API server")
    sim.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    sim.add_argument("--startup", type=float, default=1.0, help="seconds from bound to Running (default 1)")
    sim.add_argument("--watch-timeout", type=IntArg(1, INT32[1]), default=300, help="server-side watch timeout, seconds")
    sim.set_defaults(run=_kubelet_sim)


async def _crds(args, settings) -> int:
    from eventbatch.kube.crds import all_crds, render

    manifests = all_crds(args.api_groups or settings.api_groups)
    if args.output_dir:
        _write_files(Path(args.output_dir), {name: render(manifest) for name, manifest in manifests.items()})
        return 0
    print("---\n".join(render(m) for m in manifests.values()), end="")
    return 0


def _write_files(folder: Path, texts: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text)


async def _kubelet_sim(args, settings) -> int:
    from eventbatch.kube.client import Connection
    from eventbatch.kube.kubelet_sim import KubeletSim

    connection = Connection(args.kubeconfig)
    try:
        kube = await connection.get()
    except Exception as exc:
        raise CliError(f"cannot connect to the API server: {exc}") from None
    try:
        await KubeletSim(kube=kube, startup_s=args.startup, watch_timeout_s=args.watch_timeout).run()
    finally:
        await connection.close()
    return 0

"""A small, faithful Kubernetes API server for tests (no kube-apiserver needed).

Where it sits: the kube tests start ``ApiServer`` on a loopback port, write a
kubeconfig for it, and run eventbatch's kube adapter, actuator and
``kubelet-sim`` against it through kubernetes_asyncio, unchanged, over HTTP.
"""

from tests.kube.apiserver.server import ApiServer, Call

__all__ = ["ApiServer", "Call"]

"""Leader election with a coordination.k8s.io/v1 Lease: one replica acts at a time.

Where it sits: ``eventbatch serve --cluster kube`` campaigns before it builds
the pipeline and runs it only while it holds the Lease; every other replica
waits as a standby. The algorithm is client-go's: a holder renews the Lease
every ``retry_period``; a candidate takes it over only when the record it
observed has not changed for ``lease_duration`` (measured on its own
monotonic clock, so clock skew between nodes does not matter); writes go
through resourceVersion preconditions, so two candidates cannot both win.
A leader that cannot renew within ``renew_deadline`` stops leading:
``hold()`` returns and the process exits rather than risk two actors.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.backoff import transient
from eventbatch.kube.client import Kube

log = logging.getLogger(__name__)


def _micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    kube: Kube
    identity: str
    namespace: str = "eventbatch-system"
    name: str = "eventbatch"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    leading: bool = False
    reached: bool = False  # the Lease was read once: the API server answers
    transitions: int = 0
    _observed: tuple[str, str] | None = field(default=None, repr=False)  # (holder, renewTime)
    _observed_at: float = field(default=0.0, repr=False)
    _rv: str = field(default="", repr=False)

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        while True:
            try:
                if await self.try_acquire_or_renew():
                    break
            except Exception as exc:
                if not transient(exc):
                    raise
                log.warning("lease unavailable, retrying", extra={"error": repr(exc)[:200]})
            await asyncio.sleep(self.retry_period)
        log.info("became leader", extra={"identity": self.identity, "lease": f"{self.namespace}/{self.name}"})

    async def hold(self) -> None:
        """Renew until a renewal fails for ``renew_deadline``; then return (leadership lost)."""
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            left = self.renew_deadline - (time.monotonic() - last_renewed)
            try:
                ok = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=max(left, 0.01))
            except Exception as exc:
                log.warning("lease renewal failed", extra={"error": repr(exc)[:200]})
                ok = False
            now = time.monotonic()
            if ok:
                last_renewed = now
            elif not self.leading or now - last_renewed >= self.renew_deadline:
                self.leading = False
                log.error("lost leadership", extra={"identity": self.identity})
                return

    async def release(self) -> None:
        """Give the Lease up at a clean shutdown, so a standby takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self._read()
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                await self.kube.call(
                    self.kube.coordination.replace_namespaced_lease, self.name, self.namespace, lease, retries=False
                )
        except Exception as exc:
            log.warning("could not release the lease", extra={"error": repr(exc)[:200]})

    async def try_acquire_or_renew(self) -> bool:
        lease = await self._read()
        now = _micro_time()
        spec_mine: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, int(round(self.lease_duration))),
            "renewTime": now,
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec_mine, "acquireTime": now, "leaseTransitions": 0},
            }
            try:
                await self.kube.call(self.kube.coordination.create_namespaced_lease, self.namespace, body, retries=False)
            except ApiException as exc:
                if exc.status == 409:
                    return False
                raise
            self._won()
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime") or "")
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        expired = time.monotonic() - self._observed_at >= duration
        if holder and holder != self.identity and not expired:
            self.leading = False
            return False
        new_spec = {**spec, **spec_mine}
        if holder != self.identity:
            new_spec["acquireTime"] = now
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        try:
            await self.kube.call(self.kube.coordination.replace_namespaced_lease, self.name, self.namespace, lease, retries=False)
        except ApiException as exc:
            if exc.status == 409:  # somebody else wrote first
                return False
            raise
        if holder != self.identity:
            self._won()
        self.leading = True
        self._observed, self._observed_at = (self.identity, now), time.monotonic()
        return True

    def _won(self) -> None:
        self.leading = True
        self.transitions += 1

    async def _read(self) -> dict[str, Any] | None:
        try:
            lease = await self.kube.call(
                self.kube.coordination.read_namespaced_lease, self.name, self.namespace, retries=False
            )
        except ApiException as exc:
            if exc.status == 404:
                self.reached = True
                return None
            raise
        self.reached = True
        return lease

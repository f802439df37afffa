"""Names for jobs submitted with only ``metadata.generateName``.

Where it sits: the job controller (``handlers.job.handler``) calls
``name_submission`` on every ``JobSubmitRequested`` before it looks the job
up. A manifest that has a name is left as it is. One with only
``generateName`` (what ``kubectl create`` sends; a scenario or
``eventbatch apply`` may send it too) is named as the API server names it,
``<generateName, at most 58 characters><5 characters>`` from the API
server's alphabet (no vowels, no 0, 1, 3), but the 5 characters are not
random: they are the first bytes of a SHA-256 of the namespace, the prefix
and the request's log position, so replaying the log names the job the
same. A name a live job already has is skipped (the next try hashes an
attempt number too), where the API server would answer AlreadyExists. The
chosen name is in ``JobCreated`` (its ``job`` key and its manifest's
``metadata.name``); the request keeps the key ``<namespace>/`` it was
appended with. In kube mode the API server has named the job already.
"""

from __future__ import annotations

import hashlib
from itertools import count

import msgspec

from projections.job_records import JobsState
from schemas.events import JobSubmitRequested

# k8s.io/apiserver's names.SimpleNameGenerator: utilrand.String's alphabet, 5 characters,
# after at most 63 - 5 characters of the prefix.
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX = 5
MAX_PREFIX = 63 - SUFFIX


def generated_name(namespace: str, prefix: str, position: int, attempt: int = 0) -> str:
    seed = f"{namespace}/{prefix}@{position}#{attempt}".encode()
    digest = hashlib.sha256(seed).digest()
    return prefix[:MAX_PREFIX] + "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:SUFFIX])


def name_submission(state: JobsState, ev: JobSubmitRequested, position: int) -> JobSubmitRequested:
    """The request as if it had named its job: unchanged when the manifest has a name."""
    meta = ev.manifest.metadata
    if meta.name or not meta.generate_name:
        return ev
    namespace = meta.namespace or "default"
    for attempt in count():
        name = generated_name(namespace, meta.generate_name, position, attempt)
        if f"{namespace}/{name}" not in state.jobs:
            break
    manifest = msgspec.structs.replace(ev.manifest, metadata=msgspec.structs.replace(meta, name=name))
    return msgspec.structs.replace(ev, job=f"{namespace}/{name}", manifest=manifest)

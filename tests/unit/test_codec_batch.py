"""A batch encoded at once (``eventbatch.log.codec.encode_batch``) is byte for byte the records
``encode`` gives one by one, and refuses a record over ``MAX_RECORD_BYTES`` naming that one.

Where it sits: unit tests of the log codec. The SQLite backend appends what ``encode_batch`` gives
(views into one buffer); old logs and every reader depend on those bytes being the records as
they always were (``tests/unit/test_envelope_record.py`` pins those bytes for ``encode``).
"""

from __future__ import annotations

import msgspec
import pytest

from eventbatch.log.codec import MAX_RECORD_BYTES, RecordTooLarge, encode, encode_batch
from schemas.envelope import Causation, encode_record
from schemas.events import QueueStateChanged
from tests.support.events import mixed_batch, node_added, pod_requested, wrap
from tests.unit.test_envelope_record import WRITTEN_BEFORE


def test_a_batch_is_the_records_one_by_one_byte_for_byte() -> None:
    odd = wrap(  # strings a line-based or ASCII-only encoding would get wrong
        QueueStateChanged(queue="q\n1\t\"é😀\u2028", state="Closed", previous="Open\r\n"),
        causation=Causation(7, "queue-controller", 3, 6),
    )
    batch = [
        *mixed_batch("job", 300),
        *(envelope for envelope, _ in WRITTEN_BEFORE),
        odd,
        msgspec.structs.replace(wrap(node_added(3)), epoch=12),
        wrap(pod_requested("big", 0, annotation_bytes=100_000)),
    ]
    records = encode_batch(batch)
    assert [bytes(record) for record in records] == [encode(envelope) for envelope in batch]
    assert [bytes(record) for record in encode_batch(batch[:1])] == [encode(batch[0])]
    assert encode_batch([]) == []
    assert [bytes(r) for r in encode_batch([e for e, _ in WRITTEN_BEFORE])] == [r for _, r in WRITTEN_BEFORE]


def test_a_record_over_the_limit_is_refused_naming_it() -> None:
    base = len(encode(wrap(pod_requested("big", 0))))
    too_large = wrap(pod_requested("big", 0, annotation_bytes=MAX_RECORD_BYTES - base + 1000))
    with pytest.raises(RecordTooLarge, match=f"at most {MAX_RECORD_BYTES:,} bytes") as refused:
        encode_batch([wrap(node_added(1)), too_large, wrap(node_added(2))])
    assert refused.value.size == len(encode_record(too_large)) > MAX_RECORD_BYTES
    assert f"the PodRequested record of {too_large.key!r}" in str(refused.value)

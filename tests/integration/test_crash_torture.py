"""Crash torture: ``serve`` SIGKILLed at 50 random points loses no effect and repeats none.

A 200-job workload (``tests.support.torture``) runs through the real
``eventbatch serve`` on a SQLite file and on a Kafka topic, once without a
kill (the reference) and once SIGKILLed each time the log passes a random
position, restarted with snapshots every 100, 10 and 1 events in turn. At the
end the log must hold no duplicated effect and no lost one, every job must
end as in the reference (final phase, retries, pod exit codes; positions and
interleavings differ, the sim runs on the wall clock), and ``eventbatch
replay --verify`` must exit 0. A serve with one dedupe planted out
(``tests.support.faulty_serve``) shows that the checker and ``--verify``
both catch a cause answered twice.

``EVENTBATCH_TORTURE_KILLS`` sets the number of kills per backend (default
50); ``EVENTBATCH_TORTURE_SEED`` replays a failed run (its seed is in the
failure message).
"""

from __future__ import annotations

import functools
import os
import random
import uuid
from pathlib import Path

import pytest

from tests.support import torture
from tests.support.faulty_serve import FAULT

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("EVENTBATCH_TORTURE_KILLS", "50"))
SEED = int(os.environ.get("EVENTBATCH_TORTURE_SEED") or random.SystemRandom().randrange(1 << 32))


@functools.cache
def load() -> torture.Workload:
    return torture.workload()


def _serve_errors(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-3000:]


async def crash_torture(url: str, reference_url: str, tmp_path: Path) -> None:
    ref_run, ref = await torture.reference(reference_url, tmp_path / "reference-snapshots.db", load())
    assert ref_run.settled and not ref.duplicated and not ref.lost, f"the uninterrupted run is not clean:\n{ref.summary()}"
    assert set(ref.outcomes) == set(load().kinds)

    errors = tmp_path / "serve.err"
    run, report = await torture.torture(
        url, tmp_path / "snapshots.db", load(), kills=KILLS, seed=SEED, stderr=errors
    )
    code, verified = await torture.replay_verify(url)

    problems = []
    if len(run.kills) < KILLS:
        problems.append(f"only {len(run.kills)} of {KILLS} kills: the log stopped growing before the rest\n{run.timeline()}")
    if run.serve_died:
        problems.append(f"serve exited on its own with {run.serve_died}:\n{_serve_errors(errors)}")
    if report.duplicated or report.lost:
        by_n = {n: dict(c) for n, c in sorted(torture.by_snapshot_interval(run, report).items())}
        problems.append(f"{report.summary()}\nby the snapshot interval of the serve that appended them: {by_n}")
    if differ := torture.compare_outcomes(ref, report):
        problems.append(f"{len(differ)} job(s) end otherwise than in the uninterrupted run:\n  " + "\n  ".join(differ[:15]))
    if code != 0:
        problems.append(f"replay --verify exited {code}:\n{verified[-3000:]}")
    assert not problems, (
        f"crash torture (seed {SEED}: EVENTBATCH_TORTURE_SEED={SEED} EVENTBATCH_TORTURE_KILLS={KILLS}), "
        f"{len(run.kills)} kills in {run.seconds:.0f}s (reference {ref_run.seconds:.0f}s):\n" + "\n".join(problems)
    )


async def test_sigkilled_serve_on_sqlite_repeats_and_loses_nothing(tmp_path: Path) -> None:
    await crash_torture(f"sqlite:///{tmp_path}/events.db", f"sqlite:///{tmp_path}/reference.db", tmp_path)


@pytest.mark.kafka
async def test_sigkilled_serve_on_kafka_repeats_and_loses_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"torture-{uuid.uuid4().hex[:8]}"
    await crash_torture(f"kafka://{kafka_bootstrap}/{topic}", f"kafka://{kafka_bootstrap}/{topic}-reference", tmp_path)


async def test_a_dedupe_planted_out_is_caught_by_the_checker_and_by_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    run, report = await torture.torture(
        url, tmp_path / "snapshots.db", load(), kills=3, seed=SEED, module="tests.support.faulty_serve",
        stderr=tmp_path / "serve.err", timeout=8.0,
    )
    code, verified = await torture.replay_verify(url)
    context = f"seed {SEED}, planted fault: {FAULT}\n{report.summary()}\nreplay --verify exited {code}:\n{verified[-2000:]}"
    twice = [f for f in report.duplicated if f.kind == "sim answered a cause twice"]
    assert twice, f"the checker missed the planted fault\n{context}"
    assert code == 1 and "duplicated effect" in verified, f"replay --verify missed the planted fault\n{context}"

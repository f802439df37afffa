"""The simulated kubelet's run time of a pod (``eventbatch.sim.kubelet.pod_runtime``): whole
seconds, as trace imports write them, are read directly; every form reads as the one duration
parser reads it, and what it refuses leaves the pod running until deleted."""

from __future__ import annotations

import pytest

from eventbatch.sim.kubelet import DURATION, EXIT_CODE, pod_runtime
from schemas.quantity import QuantityError, duration_ms


@pytest.mark.parametrize(
    "text",
    ["0s", "5s", "007s", "5400s", "999999999s", "9223372036s", "9223372037s", "1234567890s", "90m", "1h30m",
     "1.5s", "+3s", "10ms", "s", "", "-5s", "5", "５s", "5 s"],
)
def test_a_run_time_reads_as_the_duration_parser_reads_it(text: str) -> None:
    try:
        expected: int | None = duration_ms(text)
    except QuantityError:
        expected = None
    assert pod_runtime({DURATION: text}) == (expected, 0)


def test_whole_seconds_and_an_exit_code() -> None:
    assert pod_runtime({DURATION: "5400s", EXIT_CODE: "3"}) == (5_400_000, 3)
    assert pod_runtime({}) == (None, 0)

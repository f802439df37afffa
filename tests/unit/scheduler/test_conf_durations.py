"""A duration means the same time in a scheduler conf as in a job manifest.

One parser reads Go durations (``schemas.quantity.parse_duration``, in the unit
its caller names): the scheduler conf's ``inqueue-timeout``, ``starvation``
and ``sla-waiting-time`` take, to the millisecond dropped, the time a
lifecycle policy's ``timeout`` takes, exactly (no float rounding), and refuse
what it refuses, in the conf's one-line error.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.scheduler import ConfError, load_conf
from handlers.scheduler.conf import duration_argument_ms as conf_duration
from schemas.quantity import QuantityError, duration_ms, parse_duration

MS = 10**6

parts = st.tuples(
    st.integers(0, 10_000), st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=4)),
    st.sampled_from(["ns", "us", "µs", "μs", "ms", "s", "m", "h"]),
)
durations = st.lists(parts, min_size=1, max_size=3).map(
    lambda ps: "".join(f"{whole}{'' if frac is None else '.' + frac}{unit}" for whole, frac, unit in ps)
)


@given(durations)
def test_a_conf_duration_is_the_manifest_duration_in_whole_milliseconds(text: str) -> None:
    assert conf_duration(text) == parse_duration(text) // MS == parse_duration(text, "ms")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1.005s", 1005), ("2.272h", 8_179_200), ("0.29s", 290), ("1μs", 0), ("1500us", 1), ("10m", 600_000), (" 90s ", 90_000)],
    ids=repr,
)
def test_conf_durations_are_exact(text: str, ms: int) -> None:
    assert conf_duration(text) == ms


@pytest.mark.parametrize("text", ["soon", "10", "1d", "-5m", "+5m", "5 min", "٣s"], ids=repr)
def test_a_conf_refuses_what_is_no_duration_in_one_line(text: str) -> None:
    conf = f'actions: "enqueue"\ntiers: []\nconfigurations:\n- name: enqueue\n  arguments: {{inqueue-timeout: "{text}"}}'
    with pytest.raises(ConfError) as info:
        load_conf(conf)
    assert str(info.value) == f"{text!r} is not a duration (expected e.g. '90s', '10m', '1h30m')"


def test_a_conf_duration_past_gos_range_is_refused_as_go_does() -> None:
    with pytest.raises(QuantityError, match="too long"):
        parse_duration("2562048h")
    with pytest.raises(ConfError, match="^'2562048h' is too long a duration$"):
        conf_duration("2562048h")
    assert conf_duration("2562047h") == 2562047 * 3_600_000


@pytest.mark.parametrize(
    ("text", "unit", "round_up", "value"),
    [
        ("1500us", "ms", False, 1),
        ("1500us", "ms", True, 2),
        ("-1500us", "ms", False, -1),
        ("-1500us", "ms", True, -1),
        ("90m", "h", False, 1),
        ("1h30m", "s", False, 5400),
        ("2ms", "ms", True, 2),
    ],
)
def test_the_parser_returns_the_unit_it_is_asked_for(text: str, unit: str, round_up: bool, value: int) -> None:
    assert parse_duration(text, unit, round_up=round_up) == value


def test_duration_ms_is_the_parser_rounding_up() -> None:
    assert duration_ms("1500us") == parse_duration("1500us", "ms", round_up=True) == 2

"""Quantity parsing, formatting, pod requests and Resources arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.quantity import (
    QuantityError,
    add,
    fits,
    format_quantity,
    is_zero,
    less_equal,
    maximum,
    parse_quantity,
    requests_of,
    sub,
    to_resources,
)
from schemas.resources import Container, PodSpec, ResourceRequirements

GI = 1024**3
MI = 1024**2


@pytest.mark.parametrize(
    ("value", "resource", "expected"),
    [
        ("500m", "cpu", 500),
        ("1", "cpu", 1000),
        ("1.5", "cpu", 1500),
        ("0.1", "cpu", 100),
        (".5", "cpu", 500),
        ("1.", "cpu", 1000),
        ("+2", "cpu", 2000),
        ("2e3", "cpu", 2_000_000),
        ("2E3", "cpu", 2_000_000),
        ("1e-3", "cpu", 1),
        ("1.5e+1", "cpu", 15_000),
        ("100u", "cpu", 1),
        ("100n", "cpu", 1),
        ("1001u", "cpu", 2),
        ("0", "cpu", 0),
        ("1k", "cpu", 1_000_000),
        ("4Gi", "memory", 4 * GI),
        ("128974848", "memory", 128974848),
        ("129e6", "memory", 129_000_000),
        ("129M", "memory", 129_000_000),
        ("123Mi", "memory", 123 * MI),
        ("1k", "memory", 1000),
        ("1Ki", "memory", 1024),
        ("1.5Gi", "memory", 3 * GI // 2),
        ("1E", "memory", 10**18),
        ("1Ei", "memory", 2**60),
        ("0.5", "memory", 1),
        ("500m", "memory", 1),
        ("1500m", "memory", 2),
        ("10Gi", "ephemeral-storage", 10 * GI),
        ("2Gi", "hugepages-2Mi", 2 * GI),
        ("1Ti", "storage", 1024**4),
        ("1", "nvidia.com/gpu", 1000),
        ("250m", "nvidia.com/gpu", 250),
        ("110", "pods", 110),
        (3, "cpu", 3000),
        (0.5, "cpu", 500),
        (1e-05, "cpu", 1),
        (2, "memory", 2),
        (-1, "cpu", -1000),
        ("-500m", "cpu", -500),
    ],
    ids=lambda v: repr(v),
)
def test_parse_quantity_is_exact(value, resource, expected):
    assert parse_quantity(value, resource) == expected


def test_parse_never_goes_through_float():
    # 0.1 + 0.2 style drift would show up in the last digit of a large amount.
    assert parse_quantity("9007199254740993", "memory") == 9007199254740993
    assert parse_quantity("0.3", "cpu") == 300
    assert parse_quantity("7.0000001", "memory") == 8


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", "not a quantity"),
        ("1.2.3", "not a quantity"),
        ("5Qi", "unknown unit 'Qi'"),
        ("", "empty"),
        (" 1", "not a quantity"),
        ("1 ", "not a quantity"),
        ("1e", "unknown unit 'e'"),
        ("1Ki5", "digits after unit"),
        ("1mi", "unknown unit"),
        ("--1", "not a quantity"),
        (".", "no digits"),
        ("1e999999999", "out of range"),
        ("10E", "too large"),
        (True, "not a quantity"),
        (None, "not a quantity"),
        (float("nan"), "not a quantity"),
        (float("inf"), "not a quantity"),
    ],
    ids=lambda v: repr(v),
)
def test_parse_quantity_rejects_malformed(value, fragment):
    with pytest.raises(QuantityError, match=None) as info:
        parse_quantity(value, "cpu")
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_to_resources_names_the_bad_resource():
    assert to_resources({"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": 1}) == {
        "cpu": 2000,
        "memory": GI,
        "nvidia.com/gpu": 1000,
    }
    with pytest.raises(QuantityError, match="^memory: '4GB' has unknown unit 'GB'"):
        to_resources({"cpu": "1", "memory": "4GB"})


@pytest.mark.parametrize(
    ("amount", "resource", "expected"),
    [
        (1500, "cpu", "1500m"),
        (2000, "cpu", "2"),
        (1, "cpu", "1m"),
        (0, "cpu", "0"),
        (-250, "cpu", "-250m"),
        (1000, "nvidia.com/gpu", "1"),
        (4 * GI, "memory", "4Gi"),
        (123 * MI, "memory", "123Mi"),
        (129_000_000, "memory", "129M"),
        (1000, "memory", "1k"),
        (1_000_001, "memory", "1000001"),
        (10**18, "memory", "1E"),
        (2**60, "memory", "1Ei"),
        (110, "pods", "110"),
    ],
    ids=lambda v: repr(v),
)
def test_format_quantity(amount, resource, expected):
    assert format_quantity(amount, resource) == expected


RESOURCE_NAMES = st.sampled_from(
    ["cpu", "memory", "pods", "nvidia.com/gpu", "ephemeral-storage", "hugepages-1Gi"]
)


@given(amount=st.integers(min_value=-(2**62), max_value=2**62), resource=RESOURCE_NAMES)
def test_format_then_parse_round_trips(amount, resource):
    assert parse_quantity(format_quantity(amount, resource), resource) == amount


@given(
    whole=st.integers(min_value=0, max_value=10**6),
    frac=st.text(alphabet="0123456789", min_size=1, max_size=9),
    suffix=st.sampled_from(["", "k", "M", "G", "Ki", "Mi", "Gi", "m"]),
)
def test_decimal_strings_parse_exactly(whole, frac, suffix):
    import math
    from fractions import Fraction

    factor = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 1024, "Mi": MI, "Gi": GI, "m": Fraction(1, 1000)}
    exact = (whole + Fraction(int(frac), 10 ** len(frac))) * factor[suffix]
    assert parse_quantity(f"{whole}.{frac}{suffix}", "memory") == math.ceil(exact)
    assert parse_quantity(f"{whole}.{frac}{suffix}", "cpu") == math.ceil(exact * 1000)


# --- requests_of -------------------------------------------------------------


def container(requests=None, limits=None, **extra) -> Container:
    return Container(
        name="c",
        resources=ResourceRequirements(requests=requests or {}, limits=limits or {}),
        extra=extra,
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (PodSpec(), {"pods": 1}),
        (
            PodSpec(containers=[container({"cpu": "1", "memory": "1Gi"}), container({"cpu": "500m"})]),
            {"cpu": 1500, "memory": GI, "pods": 1},
        ),
        (
            PodSpec(containers=[container(limits={"cpu": "2", "nvidia.com/gpu": "1"})]),
            {"cpu": 2000, "nvidia.com/gpu": 1000, "pods": 1},
        ),
        (
            PodSpec(containers=[container({"cpu": "1"}, {"cpu": "2", "memory": "2Gi"})]),
            {"cpu": 1000, "memory": 2 * GI, "pods": 1},
        ),
        (
            PodSpec(
                containers=[container({"cpu": "1", "memory": "1Gi"})],
                init_containers=[container({"cpu": "3"}), container({"memory": "512Mi"})],
            ),
            {"cpu": 3000, "memory": GI, "pods": 1},
        ),
        (
            PodSpec(
                containers=[container({"cpu": "1"})],
                init_containers=[
                    container({"cpu": "500m"}, restartPolicy="Always"),
                    container({"cpu": "2"}),
                ],
            ),
            {"cpu": 2500, "pods": 1},
        ),
        (
            PodSpec(
                containers=[container({"cpu": "1"})],
                extra={"overhead": {"cpu": "250m", "memory": "120Mi"}},
            ),
            {"cpu": 1250, "memory": 120 * MI, "pods": 1},
        ),
    ],
    ids=[
        "empty",
        "containers-add",
        "limits-stand-in-for-requests",
        "request-wins-over-limit-per-resource",
        "init-containers-take-max",
        "sidecar-adds-to-main-and-later-init",
        "overhead-added",
    ],
)
def test_requests_of(spec, expected):
    assert requests_of(spec) == expected


def test_requests_of_reports_malformed_quantity():
    with pytest.raises(QuantityError, match="cpu"):
        requests_of(PodSpec(containers=[container({"cpu": "one"})]))


# --- arithmetic ----------------------------------------------------------------


def test_arithmetic_treats_missing_as_zero():
    a = {"cpu": 1000, "memory": GI}
    b = {"cpu": 500, "nvidia.com/gpu": 1000}
    assert add(a, b) == {"cpu": 1500, "memory": GI, "nvidia.com/gpu": 1000}
    assert sub(a, b) == {"cpu": 500, "memory": GI, "nvidia.com/gpu": -1000}
    assert maximum(a, b) == {"cpu": 1000, "memory": GI, "nvidia.com/gpu": 1000}
    assert a == {"cpu": 1000, "memory": GI}, "inputs are not modified"


@pytest.mark.parametrize(
    ("request_", "available", "fit", "le"),
    [
        ({"cpu": 1000}, {"cpu": 1000, "memory": GI}, True, True),
        ({"cpu": 1001}, {"cpu": 1000}, False, False),
        ({"nvidia.com/gpu": 1000}, {"cpu": 8000}, False, False),
        ({"nvidia.com/gpu": 0}, {"cpu": 8000}, True, True),
        ({}, {}, True, True),
        ({"cpu": 0}, {"cpu": -5}, True, False),
        ({}, {"cpu": -5}, True, False),
    ],
    ids=["within", "over", "missing-resource", "zero-of-missing", "empty", "negative-available", "negative-only-in-b"],
)
def test_fits_and_less_equal(request_, available, fit, le):
    assert fits(request_, available) is fit
    assert less_equal(request_, available) is le


@pytest.mark.parametrize(
    ("resources", "zero"),
    [({}, True), ({"cpu": 0, "memory": 0}, True), ({"cpu": 0, "memory": 1}, False), ({"cpu": -1}, False)],
    ids=["empty", "all-zero", "one-positive", "negative"],
)
def test_is_zero(resources, zero):
    assert is_zero(resources) is zero


# --- Go durations ---------------------------------------------------------------

from schemas.quantity import duration_ms, parse_duration  # noqa: E402

S = 10**9


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("90s", 90 * S),
        ("10m", 600 * S),
        ("1h30m", 5400 * S),
        ("1.5m", 90 * S),
        (".5s", S // 2),
        ("300ms", 300 * 10**6),
        ("1us", 1000),
        ("1µs", 1000),
        ("7ns", 7),
        ("-1s", -S),
        ("+2h", 7200 * S),
        ("1h0m0.5s", 3600 * S + S // 2),
    ],
    ids=lambda v: repr(v),
)
def test_parse_duration(text, nanos):
    assert parse_duration(text) == nanos


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "5 min", "1h 30m", "-", "1d", "1e3s"], ids=repr)
def test_parse_duration_rejects(text):
    with pytest.raises(QuantityError, match="not a duration"):
        parse_duration(text)


def test_duration_ms_rounds_partial_milliseconds_up():
    assert duration_ms("10m") == 600_000
    assert duration_ms("1500us") == 2
    assert duration_ms("0") == 0

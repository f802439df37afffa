"""Kubernetes resource quantities as exact integers, and arithmetic on them.

Where it sits: the bridge between the strings a user writes in a pod template
(``"500m"``, ``"4Gi"``, ``"1.5"``) and the integer ``Resources`` maps the
scheduler compares and adds. Parsing never goes through a float: the number is
kept as an exact fraction and rounded up once, the way Kubernetes rounds a
quantity up to the unit it is read in.

Units of a ``Resources`` map:

* byte-denominated resources (``memory``, ``ephemeral-storage``, ``storage``,
  ``hugepages-*``) are counted in bytes;
* ``pods`` is a plain count;
* everything else (``cpu``, ``nvidia.com/gpu`` and other extended resources)
  is counted in milli-units, so ``cpu: "1.5"`` is 1500 and a GPU is 1000.

Go durations (a lifecycle policy's ``timeout: 10m``, a scenario's times, the
scheduler conf's ``inqueue-timeout``) are parsed here too, by one parser,
exactly, into the unit its caller names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from fractions import Fraction

from schemas.resources import Container, PodSpec, Resources

__all__ = [
    "QuantityError",
    "add",
    "duration_ms",
    "fits",
    "format_quantity",
    "format_resources",
    "is_byte_resource",
    "is_zero",
    "less_equal",
    "maximum",
    "parse_duration",
    "parse_quantity",
    "requests_of",
    "scale_of",
    "sub",
    "to_resources",
]


class QuantityError(ValueError):
    """A quantity string that Kubernetes would not accept."""


# <signedNumber><suffix>, suffix one of binary SI, decimal SI or e<signedNumber>.
_QUANTITY = re.compile(
    r"""
    (?P<sign>[+-])?
    (?P<int>[0-9]*)
    (?:\.(?P<frac>[0-9]*))?
    (?P<suffix>[a-zA-Z]*)
    (?P<exp>[+-]?[0-9]+)?
    """,
    re.VERBOSE,
)

_BINARY_SI = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
}
_DECIMAL_SI = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Exponents this far out are no quantity anybody means; refusing them keeps a
# hostile "1e999999999" from allocating a number with a billion digits.
_MAX_EXPONENT = 60
# Kubernetes stores a quantity's value in an int64.
_LIMIT = 2**63

_BYTE_RESOURCES = frozenset({"memory", "ephemeral-storage", "storage"})


def scale_of(resource: str) -> int:
    """How many integer units make one unit of ``resource`` (1000 for milli-units)."""
    if resource == "pods" or is_byte_resource(resource):
        return 1
    return 1000


def is_byte_resource(resource: str) -> bool:
    """Whether ``resource`` is counted in bytes (memory, storage, hugepages)."""
    return resource in _BYTE_RESOURCES or resource.startswith("hugepages-")


def _exact(text: str) -> Fraction:
    """The exact value of a quantity string, or ``QuantityError`` saying why not."""
    if not text:
        raise QuantityError("quantity is empty")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(f"{text!r} is not a quantity (expected a number with an optional unit suffix)")
    integer, frac = match["int"], match["frac"]
    suffix, exp = match["suffix"], match["exp"]
    if not integer and not frac:
        raise QuantityError(f"{text!r} is not a quantity: no digits")
    mantissa = Fraction(int((integer or "0") + (frac or "")), 10 ** len(frac or ""))
    if exp is not None:
        if suffix not in ("e", "E"):
            raise QuantityError(f"{text!r} is not a quantity: digits after unit {suffix!r}")
        exponent = int(exp)
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent {exponent} is out of range")
        multiplier = Fraction(10) ** exponent
    elif suffix in _BINARY_SI:
        multiplier = Fraction(_BINARY_SI[suffix])
    elif suffix in _DECIMAL_SI:
        multiplier = _DECIMAL_SI[suffix]
    else:
        known = ", ".join(["n", "u", "m", "k", "M", "G", "T", "P", "E", *_BINARY_SI])
        raise QuantityError(f"{text!r} has unknown unit {suffix!r} (known: {known}, or e<exponent>)")
    value = mantissa * multiplier
    return -value if match["sign"] == "-" else value


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def parse_quantity(value: str | int | float, resource: str = "") -> int:
    """The integer amount of ``value`` in the units of ``resource``.

    Fractions of the unit round up, as Kubernetes rounds ``MilliValue()`` and
    ``Value()``: ``cpu: "100u"`` is 1 milli-CPU, ``memory: "0.5"`` is 1 byte.
    """
    if type(value) is str:
        return _parse_text(value, scale_of(resource), resource)
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        exact = Fraction(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(f"{value!r} is not a quantity")
        # repr gives the shortest decimal that reads back as this float,
        # which is what the user wrote in YAML ("0.5", "1e-05").
        exact = _exact(repr(value))
    elif isinstance(value, str):
        exact = _exact(value)
    else:
        raise QuantityError(f"{value!r} is not a quantity (expected a string or a number)")
    return _scaled(exact, scale_of(resource), value, resource)


def _scaled(exact: Fraction, scale: int, value: object, resource: str) -> int:
    amount = _ceil(exact * scale)
    if not -_LIMIT <= amount < _LIMIT:
        raise QuantityError(f"{value!r} is too large for {resource or 'a quantity'}")
    return amount


@functools.lru_cache(maxsize=8192)
def _parse_text(text: str, scale: int, resource: str) -> int:
    # Pod templates repeat the same few strings ("500m", "4Gi") endlessly.
    return _scaled(_exact(text), scale, text, resource)


def to_resources(d: Mapping[str, str | int | float]) -> Resources:
    """A ``Resources`` map from a ``{name: quantity}`` mapping such as ``requests``.

    A ``QuantityError`` names the resource whose quantity is malformed.
    """
    out: Resources = {}
    for name, value in d.items():
        try:
            out[name] = parse_quantity(value, name)
        except QuantityError as exc:
            raise QuantityError(f"{name}: {exc}") from None
    return out


_BINARY_DESC = sorted(_BINARY_SI.items(), key=lambda kv: -kv[1])
_DECIMAL_DESC = [("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)]


def format_quantity(amount: int, resource: str) -> str:
    """A canonical quantity string for ``amount`` units of ``resource``.

    The inverse of ``parse_quantity``: ``parse_quantity(format_quantity(a, r), r) == a``.
    Milli-unit resources print whole units plainly and the rest with ``m``
    (``1500`` cpu is ``"1500m"``, ``2000`` is ``"2"``); bytes take the
    shortest exact form (``"4Gi"``, ``"129M"``, ``"1E"``, ``"1000001"``).
    """
    if amount < 0:
        return "-" + format_quantity(-amount, resource)
    if amount == 0:
        return "0"
    scale = scale_of(resource)
    if scale != 1:
        return str(amount // scale) if amount % scale == 0 else f"{amount}m"
    if resource == "pods":
        return str(amount)
    # The shortest of: the largest exact binary suffix, the largest exact
    # decimal suffix, plain bytes; binary wins a tie.
    candidates = [str(amount)]
    for table in (_DECIMAL_DESC, _BINARY_DESC):
        for suffix, factor in table:
            if amount % factor == 0:
                candidates.append(f"{amount // factor}{suffix}")
                break
    return min(reversed(candidates), key=len)


def format_resources(resources: Mapping[str, int]) -> dict[str, str]:
    """``{name: quantity string}`` for display, keys sorted."""
    return {name: format_quantity(resources[name], name) for name in sorted(resources)}


# --- effective pod requests ------------------------------------------------


def _container_requests(container: Container) -> Resources:
    """Requests of one container; a limit stands in for a missing request."""
    res = container.resources
    out = to_resources(res.limits) if res.limits else {}
    if res.requests:
        out.update(to_resources(res.requests))
    return out


def _is_sidecar(container: Container) -> bool:
    return container.extra.get("restartPolicy") == "Always"


def requests_of(spec: PodSpec) -> Resources:
    """The effective requests of a pod, computed as Kubernetes does.

    The regular containers run together, so their requests add up; init
    containers run one at a time before them, so the pod needs the larger of
    the two. Sidecars (init containers with ``restartPolicy: Always``) keep
    running, so they add to everything started after them. Pod ``overhead``
    is added on top, and the pod occupies one of the node's ``pods`` slots.
    """
    total: Resources = {}
    for container in spec.containers:
        total = add(total, _container_requests(container))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in spec.init_containers:
        own = _container_requests(container)
        if _is_sidecar(container):
            sidecars = add(sidecars, own)
            total = add(total, own)
            init_peak = maximum(init_peak, sidecars)
        else:
            init_peak = maximum(init_peak, add(own, sidecars))
    total = maximum(total, init_peak)
    overhead = spec.extra.get("overhead")
    if isinstance(overhead, Mapping) and overhead:
        total = add(total, to_resources(overhead))
    total["pods"] = total.get("pods", 0) + 1
    return total


# --- arithmetic on Resources (a missing key is 0) ----------------------------


def add(a: Mapping[str, int], b: Mapping[str, int]) -> Resources:
    """``a + b``, element-wise."""
    out = dict(a)
    for name, amount in b.items():
        out[name] = out.get(name, 0) + amount
    return out


def sub(a: Mapping[str, int], b: Mapping[str, int]) -> Resources:
    """``a - b``, element-wise; results may be negative."""
    out = dict(a)
    for name, amount in b.items():
        out[name] = out.get(name, 0) - amount
    return out


def maximum(a: Mapping[str, int], b: Mapping[str, int]) -> Resources:
    """The element-wise maximum of ``a`` and ``b``."""
    out = dict(a)
    for name, amount in b.items():
        out[name] = max(out.get(name, 0), amount)
    return out


def fits(request: Mapping[str, int], available: Mapping[str, int]) -> bool:
    """Whether every positive amount in ``request`` is within ``available``."""
    for name, amount in request.items():
        if amount > 0 and amount > available.get(name, 0):
            return False
    return True


def less_equal(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    """``a <= b`` for every resource named in either map."""
    for name, amount in a.items():
        if amount > b.get(name, 0):
            return False
    for name, amount in b.items():
        if name not in a and amount < 0:
            return False
    return True


def is_zero(a: Mapping[str, int]) -> bool:
    """Whether every amount is zero (an empty map is zero)."""
    return not any(a.values())


# --- Go durations (policy timeouts, scenario times, scheduler conf arguments) ---

_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 micro sign
    "μs": 10**3,  # U+03BC Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str, unit: str = "ns", *, round_up: bool = False) -> int:
    """A Go duration string (``"90s"``, ``"1h30m"``, ``"1.5m"``) as a whole number of ``unit``.

    The one duration parser: ``unit`` is ``"ns"`` (Go's ``time.Duration``),
    ``"us"``, ``"ms"``, ``"s"``, ``"m"`` or ``"h"``. Like Go's
    ``time.ParseDuration``: a sign, then one or more number+unit parts; a bare
    ``"0"`` needs no unit; the value is exact (no float) and must fit Go's
    int64 of nanoseconds. A partial ``unit`` is dropped (toward zero, as Go's
    ``Duration.Milliseconds`` does), or counted as a whole one with
    ``round_up``. Raises ``QuantityError`` on anything else.
    """
    if unit not in _DURATION_UNITS:
        raise ValueError(f"unknown duration unit {unit!r}")
    if not isinstance(text, str) or not text:
        raise QuantityError(f"{text!r} is not a duration")
    body = text[1:] if text[0] in "+-" else text
    if body == "0":
        return 0
    total = Fraction(0)
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            raise QuantityError(
                f"{text!r} is not a duration (expected e.g. \"90s\", \"10m\", \"1h30m\"; units ns, us, ms, s, m, h)"
            )
        number, part_unit = match.groups()
        whole, _, frac = number.partition(".")
        total += Fraction(int((whole or "0") + frac), 10 ** len(frac)) * _DURATION_UNITS[part_unit]
        pos = match.end()
    if not body:
        raise QuantityError(f"{text!r} is not a duration")
    nanos = int(total)  # Go truncates sub-nanosecond digits
    if nanos >= _LIMIT:
        raise QuantityError(f"{text!r} is too long a duration")
    if text[0] == "-":
        nanos = -nanos
    whole_units, rest = divmod(nanos, _DURATION_UNITS[unit])
    if rest and (round_up or nanos < 0):
        whole_units += 1  # divmod floors; rounding up, or toward zero below zero, is one unit more
    return whole_units


def duration_ms(text: str) -> int:
    """A Go duration in milliseconds, a partial millisecond counting as a whole one."""
    return parse_duration(text, "ms", round_up=True)

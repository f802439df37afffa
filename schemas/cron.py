"""Cron schedules as Volcano's and Kubernetes' CronJob controllers read them.

Where it sits: under the CronJob kind (``schemas.cronjob`` checks a
schedule with ``parse``; the CronJob controller, ``handlers.cronjob``,
asks ``Schedule.next_after`` for its next run). Pure: no clock; times are
milliseconds since the epoch, as on the log.

The grammar is robfig/cron's ``ParseStandard`` (what both controllers use):
five fields, minute hour day-of-month month day-of-week, each ``*``, ``?``,
a number, a range ``a-b``, a step ``*/n``, ``a/n`` or ``a-b/n``, or a list of
those; months ``JAN``-``DEC`` and days ``SUN``-``SAT`` by name (any case);
day of week 0-6, Sunday 0. When both day fields are restricted, a day that
matches either runs (when one is ``*`` or ``?``, both must match), as in
cron. The macros ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``,
``@daily`` (``@midnight``), ``@hourly`` and ``@every <duration>`` (a Go
duration of at least a second) are accepted. Times are in ``zone`` (an IANA
name; UTC when empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.quantity import QuantityError, duration_ms

__all__ = ["CronError", "Schedule", "parse", "zone_of"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
_SEARCH_YEARS = 5  # as robfig: no match within five years means none ever


class CronError(ValueError):
    """A schedule that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    any_day: bool = False  # day of month or day of week is * or ?: both must match
    every_ms: int = 0  # @every: a fixed interval instead of the fields
    zone: str = ""

    def next_after(self, ms: int) -> int | None:
        """The first run strictly after ``ms`` (whole minutes, or ``@every`` steps), or None."""
        if self.every_ms:
            return (ms + self.every_ms) // 1000 * 1000
        tz = ZoneInfo(self.zone) if self.zone else UTC
        t = datetime.fromtimestamp(ms // 1000, tz).replace(tzinfo=None, second=0) + timedelta(minutes=1)
        end = t.year + _SEARCH_YEARS
        while t.year <= end:
            if t.month not in self.months:
                t = datetime(t.year + t.month // 12, t.month % 12 + 1, 1)
            elif not self._day(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = datetime(t.year, t.month, t.day, t.hour) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return int(t.replace(tzinfo=tz).timestamp()) * 1000
        return None

    def _day(self, t: datetime) -> bool:
        dom, dow = t.day in self.days, (t.weekday() + 1) % 7 in self.weekdays
        return (dom and dow) if self.any_day else (dom or dow)


def zone_of(name: str) -> str:
    """``name`` if it is a time zone this machine knows, else ``CronError``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}") from None
    return name


def parse(text: str, zone: str = "") -> Schedule:
    """The schedule ``text`` in time zone ``zone``, or ``CronError``."""
    spec = text.strip()
    if spec.startswith("@every "):
        try:
            every = duration_ms(spec[len("@every "):].strip())
        except QuantityError as exc:
            raise CronError(f"@every: {exc}") from None
        if every < 1000:
            raise CronError("@every: the interval must be at least 1s")
        return Schedule(every_ms=every, zone=zone)
    if spec.startswith("@"):
        if spec not in _MACROS:
            raise CronError(f"unknown macro {spec!r} (known: {', '.join(_MACROS)}, @every <duration>)")
        spec = _MACROS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    sets: list[frozenset[int]] = []
    stars: list[bool] = []
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        values, star = _field(value, name, low, high, names)
        sets.append(frozenset(values))
        stars.append(star)
    minutes, hours, days, months, weekdays = sets
    return Schedule(minutes, hours, days, months, weekdays, any_day=stars[2] or stars[4], zone=zone)


def _number(text: str, name: str, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number")
    return int(text)


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text or part.endswith("/"):
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if span in ("*", "?"):
            first, last = low, high
            star = star or step == 1
        else:
            start, dash, end = span.partition("-")
            first = _number(start, name, names)
            last = _number(end, name, names) if dash else (high if step_text else first)
        if first < low or last > high:
            raise CronError(f"{name}: {part!r} is outside {low}-{high}")
        if first > last:
            raise CronError(f"{name}: {part!r} starts after it ends")
        values.update(range(first, last + 1, step))
    return values, star

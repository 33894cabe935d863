"""Business calendar: working days, working hours and working-time arithmetic.

SLAs are stated in working time ("2 working days"), so due moments are computed
by walking a calendar of weekends, public holidays and China's make-up working
days (weekend days turned into working days around a holiday).  Design:

* Holiday data comes from the maintained ``chinese_calendar`` package, which
  only knows the years the State Council has announced (1.11.0: 2004-2026; a
  year's schedule is published around November of the year before).  For a
  year it does not cover and no notice was imported for, we use the
  statutory days plus weekends, report such years via ``provisional_years``
  and log a WARNING once per year and calendar, instead of guessing silently.
* Official notices (the State Council's yearly schedule, imported by an
  admin and stored as calendar revisions, see ``bpm_server.sla.notices``) are
  passed in as ``OfficialNotice`` objects; for its year a notice wins over the
  package.  A year with neither is *provisional*: the statutory holidays fixed
  by law (``bpm_server.sla.statutory``) are off, no make-up days are known,
  and ``is_provisional`` says so for every due moment in it.
* A deployment may override everything with a JSON calendar file; its
  ``holidays`` / ``working_days`` entries win over notices and the package
  (company days off).  Bad content is rejected up front with a
  ``CalendarFileError`` naming the key and value.
* Arithmetic runs on UTC instants: each working period of a local date becomes
  a UTC interval, so starts in any zone work and a DST shift in the calendar's
  zone counts as real elapsed time.  Results are returned in the calendar zone.
* Working time is exact (``timedelta``, microsecond precision), so
  ``working_time_between(s, add_working_time(s, d)) == d`` holds exactly;
  ``working_minutes_between`` truncates toward zero.
* "N working days" means N x the calendar's working minutes per day (480 by
  default): Friday 15:00 + 2 working days = Tuesday 15:00.  That is why a
  ``WorkingDuration`` keeps its unit and needs ``BusinessCalendar.minutes_of``
  to become minutes.
* The calendar is immutable; per-date decisions sit in bounded, thread-safe
  LRU caches; loops go day by day (a decade: ~3,650 cached lookups, a few ms).
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from bpm_server.sla import statutory

log = logging.getLogger("bpm_server.sla.calendar")

DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_WORKING_HOURS: tuple[tuple[str, str], ...] = (("09:00", "12:00"), ("13:00", "18:00"))
_KNOWN_KEYS = ("time_zone", "working_hours", "holidays", "working_days", "use_chinese_holidays")
_CACHE_DAYS = 16384  # ~45 years of per-date entries per calendar
_ONE_DAY = timedelta(days=1)
_ONE_MINUTE = timedelta(minutes=1)

Period = tuple[datetime, datetime]  # [start, end] of one working period, in UTC
DurationUnit = Literal["day", "hour", "minute"]


class CalendarFileError(ValueError):
    """Invalid calendar file or mapping; the message names the key and the bad value."""


@dataclass(frozen=True)
class WorkingDuration:
    """An amount of working time as written, e.g. ``WorkingDuration(2, "day")``.

    Only hours and minutes have a fixed length; a working day lasts the
    calendar's working minutes per day, so use ``BusinessCalendar.minutes_of``.
    """

    amount: int
    unit: DurationUnit

    def __post_init__(self) -> None:
        if self.unit not in ("day", "hour", "minute"):
            raise ValueError(f"unit must be 'day', 'hour' or 'minute', got {self.unit!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"amount must be a whole number >= 0, got {self.amount!r}")

    def __str__(self) -> str:
        return f"{self.amount} working {self.unit}{'' if self.amount == 1 else 's'}"


# Singular and plural are both accepted whatever the number ("2 working day").
_DURATION_RE = re.compile(r"\s*([0-9]+)\s+working\s+(day|hour|minute)s?\s*", re.IGNORECASE)
# The same in Chinese, as people there write it: "2 个工作日", "4 个工作小时", "30 个工作分钟"
# (the measure word 个 and the spaces optional; 工作天 for a day too).
_CHINESE_DURATION_RE = re.compile(r"\s*([0-9]+)\s*个?\s*工作\s*(日|天|小时|分钟)\s*")
_CHINESE_UNITS: dict[str, DurationUnit] = {"日": "day", "天": "day", "小时": "hour", "分钟": "minute"}
_ACCEPTED_FORMS = ("'<N> working days', '<N> working hours' or '<N> working minutes' "
                   "(singular allowed, N a whole number >= 0), e.g. '2 working days', or in Chinese "
                   "'<N> 个工作日', '<N> 个工作小时', '<N> 个工作分钟', e.g. '2 个工作日'")


def parse_working_duration(text: str) -> WorkingDuration:
    """Parse ``"2 working days"`` / ``"4 working hours"`` / ``"30 working minutes"``, or the
    Chinese ``"2 个工作日"`` / ``"4 个工作小时"`` / ``"30 个工作分钟"``."""
    if isinstance(text, str):
        match = _DURATION_RE.fullmatch(text)
        if match is not None:
            return WorkingDuration(int(match.group(1)), match.group(2).lower())  # type: ignore[arg-type]
        chinese = _CHINESE_DURATION_RE.fullmatch(text)
        if chinese is not None:
            return WorkingDuration(int(chinese.group(1)), _CHINESE_UNITS[chinese.group(2)])
    raise ValueError(f"cannot parse working duration {text!r}; accepted forms: {_ACCEPTED_FORMS}")


_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _minute_of_day(value: Any) -> int:
    match = _HHMM_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarFileError(f"working_hours: {value!r} is not a HH:MM time")
    return 24 * 60 if value == "24:00" else int(match.group(1)) * 60 + int(match.group(2))


def _parse_working_hours(value: Any) -> tuple[tuple[int, int], ...]:
    """``[["09:00","12:00"], ...]`` -> sorted ``((540, 720), ...)`` in minutes of the day."""
    if not isinstance(value, (list, tuple)) or not value:
        raise CalendarFileError(f"working_hours: expected a non-empty list of [start, end] pairs, got {value!r}")
    periods = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CalendarFileError(f"working_hours: expected a [start, end] pair, got {pair!r}")
        start, end = _minute_of_day(pair[0]), _minute_of_day(pair[1])
        if start >= end:  # also rejects "24:00" as a start
            raise CalendarFileError(f"working_hours: period {list(pair)!r} does not end after it starts")
        periods.append((start, end))
    periods.sort()
    for (s1, e1), (s2, e2) in itertools.pairwise(periods):
        if s2 < e1:  # touching periods (12:00-13:00, 13:00-...) are fine
            raise CalendarFileError(f"working_hours: periods {_hhmm(s1)}-{_hhmm(e1)} and "
                                    f"{_hhmm(s2)}-{_hhmm(e2)} overlap")
    return tuple(periods)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _parse_dates(key: str, value: Any) -> frozenset[date]:
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise CalendarFileError(f"{key}: expected a list of 'YYYY-MM-DD' dates, got {value!r}")
    dates = set()
    for item in value:
        if isinstance(item, date) and not isinstance(item, datetime):
            dates.add(item)
            continue
        try:  # the regex keeps out the looser forms fromisoformat accepts ("20270101")
            dates.add(date.fromisoformat(item if isinstance(item, str) and _DATE_RE.fullmatch(item) else ""))
        except ValueError:
            raise CalendarFileError(f"{key}: {item!r} is not a valid YYYY-MM-DD date") from None
    return frozenset(dates)


def _parse_time_zone(value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(value if isinstance(value, str) and value else "-")
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise CalendarFileError(f"time_zone: unknown time zone {value!r}") from None


@dataclass(frozen=True)
class OfficialNotice:
    """One year's official holiday schedule as the calendar uses it (a stored calendar revision)."""

    year: int
    revision: int
    holidays: frozenset[date]  # every day off, the notice's ranges expanded
    working_days: frozenset[date]  # make-up working days (weekend days that are worked)
    source: str = ""
    published: date | None = None
    stored_id: int = 0  # the revision's row id: rows are only inserted, so the newest id marks the data's version


#: The calendar's last year: the solar-term formula Qingming comes from stops at 2100, and
#: counting working time further would walk day by day through centuries of weekends.
LAST_YEAR = 2100
COMPUTABLE_UNTIL = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC) - timedelta(hours=14)  # midnight in UTC+14


def _within_range(moment: datetime) -> datetime:
    """``moment``, or the last computable moment if it lies after it (converting a moment near
    datetime.max to the calendar's zone would overflow)."""
    if isinstance(moment, datetime) and moment.tzinfo is not None and moment.utcoffset() is not None:
        return min(moment, COMPUTABLE_UNTIL)
    return moment


@cache
def _provisional_days_off(year: int) -> frozenset[date]:
    """The statutory holidays of a year nobody has data for; outside the lunar table only the solar ones.

    Years before the revised law are left to weekends: the package covers 2004-2024."""
    if year < statutory.FIRST_YEAR:
        return frozenset()
    try:
        return statutory.statutory_holidays(year)
    except statutory.UnknownLunarYear as exc:
        log.warning("%s; year %d uses only the solar statutory holidays (New Year, Qingming, Labour Day, "
                    "National Day) until its notice is imported", exc, year)
    except (NotImplementedError, ValueError, OverflowError):
        return frozenset()
    try:
        return statutory.solar_holidays(year)
    except (NotImplementedError, ValueError, OverflowError):  # outside the solar-term formula's 1900-2100
        return frozenset()


@cache
def _package_gap(year: int) -> str | None:
    """None if chinese_calendar has data for ``year``, else its explanation.

    Probed through the public API, so a newer package release extends coverage
    without code changes (the package checks coverage per whole year)."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError as exc:
        return str(exc)
    except (ValueError, OverflowError):
        return f"year {year} is outside the supported date range"
    return None


@lru_cache(maxsize=1)
def _default_calendar() -> BusinessCalendar:
    return BusinessCalendar()


class BusinessCalendar:
    """Working days and hours of one deployment; immutable and thread-safe."""

    __slots__ = (
        "_decide",
        "_holidays",
        "_hours",
        "_lock",
        "_notices",
        "_periods",
        "_use_chinese",
        "_warned",
        "_working_days",
        "_zone",
    )
    # Set once in __init__ (through object.__setattr__: the class refuses assignment).
    _zone: ZoneInfo
    _hours: tuple[tuple[int, int], ...]
    _holidays: frozenset[date]
    _working_days: frozenset[date]
    _use_chinese: bool
    _notices: Mapping[int, OfficialNotice]
    _warned: set[int]
    _lock: threading.Lock
    _decide: Callable[[date], bool]
    _periods: Callable[[date], tuple[Period, ...]]

    def __init__(self, *, time_zone: str = DEFAULT_TIME_ZONE,
                 working_hours: Iterable[Iterable[str]] = DEFAULT_WORKING_HOURS,
                 holidays: Iterable[str | date] = (), working_days: Iterable[str | date] = (),
                 use_chinese_holidays: bool = True,
                 notices: Iterable[OfficialNotice] = ()) -> None:
        if not isinstance(use_chinese_holidays, bool):
            raise CalendarFileError(f"use_chinese_holidays: expected true or false, got {use_chinese_holidays!r}")
        off, on = _parse_dates("holidays", holidays), _parse_dates("working_days", working_days)
        if off & on:
            raise CalendarFileError(f"holidays/working_days: {min(off & on).isoformat()!r} is listed as both "
                                    "a holiday and a working day")
        init = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        init("_zone", _parse_time_zone(time_zone))
        init("_hours", _parse_working_hours(working_hours))
        init("_holidays", off)
        init("_working_days", on)
        init("_use_chinese", use_chinese_holidays)
        init("_notices", {n.year: n for n in notices})
        init("_warned", set())
        init("_lock", threading.Lock())
        # lru_cache is thread-safe; a race at worst computes the same entry twice.
        init("_decide", lru_cache(maxsize=_CACHE_DAYS)(self._decide_uncached))
        init("_periods", lru_cache(maxsize=_CACHE_DAYS)(self._periods_uncached))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("BusinessCalendar is immutable")

    def __repr__(self) -> str:
        hours = ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self._hours)
        return (f"BusinessCalendar(time_zone={self._zone.key!r}, working_hours=[{hours}], "
                f"holidays={len(self._holidays)}, working_days={len(self._working_days)}, "
                f"use_chinese_holidays={self._use_chinese}, notices={sorted(self._notices)})")

    @classmethod
    def default(cls) -> BusinessCalendar:
        """Asia/Shanghai, 09:00-12:00 + 13:00-18:00, Chinese holidays (a shared instance)."""
        return _default_calendar()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        if not isinstance(data, Mapping):
            raise CalendarFileError(f"calendar: expected a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in _KNOWN_KEYS:
                raise CalendarFileError(f"unknown key {key!r}; known keys: {', '.join(_KNOWN_KEYS)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BusinessCalendar:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError covers JSON and UTF-8 decoding errors
            raise CalendarFileError(f"calendar file {os.fspath(path)!r}: cannot read JSON: {exc}") from exc
        try:
            return cls.from_mapping(data)
        except CalendarFileError as exc:
            raise CalendarFileError(f"calendar file {os.fspath(path)!r}: {exc}") from None

    def with_notices(self, notices: Iterable[OfficialNotice]) -> BusinessCalendar:
        """A new calendar like this one with ``notices`` instead of its official notices (this one is unchanged)."""
        return BusinessCalendar(time_zone=self._zone.key, working_hours=self.working_hours,
                                holidays=self._holidays, working_days=self._working_days,
                                use_chinese_holidays=self._use_chinese, notices=notices)

    @property
    def notices(self) -> dict[int, OfficialNotice]:
        """The official notices this calendar uses, by year."""
        return dict(self._notices)

    @property
    def time_zone(self) -> ZoneInfo:
        return self._zone

    @property
    def working_hours(self) -> tuple[tuple[str, str], ...]:
        return tuple((_hhmm(s), _hhmm(e)) for s, e in self._hours)

    @property
    def minutes_per_day(self) -> int:
        """Working minutes of a working day (wall clock), i.e. the length of "1 working day"."""
        return sum(e - s for s, e in self._hours)

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime) or not isinstance(d, date):
            raise TypeError(f"is_working_day needs a date, got {d!r}")
        return self._decide(d)

    def is_provisional_year(self, year: int) -> bool:
        """True when neither an official notice nor the package knows ``year``: its days off are the
        statutory ones only, and its make-up working days are unknown.

        Always False when ``use_chinese_holidays`` is off: the deployment then owns its holiday list."""
        return self._use_chinese and year not in self._notices and _package_gap(year) is not None

    def is_provisional(self, moment: datetime | None) -> bool:
        """Whether ``moment`` (a due moment, say) lies in a provisional year of this calendar's zone."""
        return moment is not None and self.is_provisional_year(self._localize(moment, "moment").year)

    def provisional_years(self, years: Iterable[int]) -> list[int]:
        """The sorted provisional years among ``years``."""
        return sorted({y for y in years if self.is_provisional_year(y)})

    uncovered_years = provisional_years  # the name the health check first used

    def _decide_uncached(self, d: date) -> bool:
        if d in self._holidays:
            return False
        if d in self._working_days:
            return True
        if self._use_chinese:
            notice = self._notices.get(d.year)
            if notice is not None:  # the official notice wins over the package for its year
                if d in notice.holidays:
                    return False
                return d in notice.working_days or d.weekday() < 5
            gap = _package_gap(d.year)
            if gap is None:
                return chinese_calendar.is_workday(d)
            self._warn_uncovered(d.year, gap)
            if d in _provisional_days_off(d.year):
                return False
        return d.weekday() < 5

    def _warn_uncovered(self, year: int, gap: str) -> None:
        with self._lock:
            if year in self._warned:
                return
            self._warned.add(year)
        log.warning("no official holiday notice and no Chinese holiday data for %d (%s); the year is "
                    "provisional: statutory holidays plus weekends, no make-up days - import the year's "
                    "notice with 'bpm-server calendar import FILE'", year, gap)

    def _periods_uncached(self, d: date) -> tuple[Period, ...]:
        if not self._decide(d):
            return ()
        midnight = datetime.combine(d, time(0), tzinfo=self._zone)
        periods: list[Period] = []
        for s, e in self._hours:
            # Aware + timedelta is wall-clock arithmetic in Python, i.e. local HH:MM.
            start = (midnight + timedelta(minutes=s)).astimezone(UTC)
            end = (midnight + timedelta(minutes=e)).astimezone(UTC)
            if periods:  # a DST jump can make local periods overlap in real time
                start = max(start, periods[-1][1])
            if end > start:  # ...or swallow one entirely
                periods.append((start, end))
        return tuple(periods)

    def _periods_from(self, d: date) -> Iterator[Period]:
        # Endless, but working days always come: only finitely many dates are
        # listed as holidays and the package/weekend rule has working weekdays.
        while True:
            yield from self._periods(d)
            d += _ONE_DAY

    def minutes_of(self, duration: WorkingDuration) -> int:
        """Working minutes of ``duration`` on this calendar (a day = ``minutes_per_day``)."""
        per_unit = {"day": self.minutes_per_day, "hour": 60, "minute": 1}
        return duration.amount * per_unit[duration.unit]

    def add_working_time(self, start: datetime, duration: WorkingDuration | int | timedelta) -> datetime:
        """The moment ``duration`` (a WorkingDuration, whole minutes or a timedelta) of working time after ``start``.

        The clock starts at the next working moment if ``start`` is outside working
        time; a duration that ends exactly at a period's end returns that end
        (18:00, not next morning).  Zero returns ``start`` unchanged (in the
        calendar zone), even outside working time."""
        local = self._localize(_within_range(start), "start")  # see working_time_between
        if isinstance(duration, WorkingDuration):
            remaining = timedelta(minutes=self.minutes_of(duration))
        elif isinstance(duration, timedelta):
            remaining = duration  # a paused SLA resumes with second precision
        elif isinstance(duration, int) and not isinstance(duration, bool):
            remaining = timedelta(minutes=duration)
        else:
            raise TypeError(f"duration must be a WorkingDuration, whole minutes or a timedelta, got {duration!r}")
        if remaining < timedelta(0):
            raise ValueError(f"duration must not be negative, got {remaining}")
        if not remaining:
            return local
        now = local.astimezone(UTC)
        for period_start, period_end in self._periods_from(local.date()):
            if period_end <= now:
                continue
            begin = max(period_start, now)
            if remaining <= period_end - begin:
                return (begin + remaining).astimezone(self._zone)
            remaining -= period_end - begin
        raise AssertionError("unreachable: _periods_from never ends")

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Exact working time from ``a`` to ``b``; negative if ``b`` is before ``a``."""
        # Counted up to the last computable moment: past it a stored clock (a test clock
        # moved to 9999, say) would make this walk millions of days or overflow the zone.
        a_utc = min(self._localize(_within_range(a), "a").astimezone(UTC), COMPUTABLE_UNTIL)
        b_utc = min(self._localize(_within_range(b), "b").astimezone(UTC), COMPUTABLE_UNTIL)
        if b_utc < a_utc:
            return -self.working_time_between(b, a)
        day, last = a_utc.astimezone(self._zone).date(), b_utc.astimezone(self._zone).date()
        total = timedelta(0)
        while day <= last:
            for start, end in self._periods(day):
                if end > a_utc and start < b_utc:
                    total += min(end, b_utc) - max(start, a_utc)
            day += _ONE_DAY
        return total

    def working_minutes_between(self, a: datetime, b: datetime) -> int:
        """``working_time_between`` in whole minutes, truncated toward zero."""
        delta = self.working_time_between(a, b)
        minutes = abs(delta) // _ONE_MINUTE
        return minutes if delta >= timedelta(0) else -minutes

    def _localize(self, moment: datetime, name: str) -> datetime:
        if not isinstance(moment, datetime):
            raise TypeError(f"{name} must be a datetime, got {moment!r}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
        return moment.astimezone(self._zone)

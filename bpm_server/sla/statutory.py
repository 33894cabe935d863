"""The public holidays fixed by law (《全国年节及纪念日放假办法》, as revised in 2024, in force from 2025).

The State Council's yearly notice turns these statutory days into holiday
ranges (moving days around weekends and adding make-up working days); until a
year's notice is out, the statutory days alone are what is known for certain.
They are used twice: as the provisional holidays of a year nobody has data
for, and to check that an imported notice covers every one of them.

The law's days for a year: 1 January; Spring Festival eve and the first three
days of the lunar year; Qingming (the solar term); 1-2 May; the Dragon Boat
festival (lunar 5/5); Mid-Autumn (lunar 8/15); 1-3 October.  Qingming comes
from ``chinese_calendar``'s solar-term formula (1900-2100).  The package has no
lunar conversion, so the three lunar dates come from the table below (checked
against the ``lunardate`` package; it is not a dependency).  Outside the table
the lunar days are unknown: ``statutory_holidays`` raises ``UnknownLunarYear``
and callers decide (the calendar falls back to the solar days and says so).
"""
from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

FIRST_YEAR = 2025  # the revised law's first year; earlier years had other statutory days
# year: (lunar new year's day, Dragon Boat festival, Mid-Autumn festival), Gregorian dates.
_LUNAR: dict[int, tuple[date, date, date]] = {
    2025: (date(2025, 1, 29), date(2025, 5, 31), date(2025, 10, 6)),
    2026: (date(2026, 2, 17), date(2026, 6, 19), date(2026, 9, 25)),
    2027: (date(2027, 2, 6), date(2027, 6, 9), date(2027, 9, 15)),
    2028: (date(2028, 1, 26), date(2028, 5, 28), date(2028, 10, 3)),
    2029: (date(2029, 2, 13), date(2029, 6, 16), date(2029, 9, 22)),
    2030: (date(2030, 2, 3), date(2030, 6, 5), date(2030, 9, 12)),
    2031: (date(2031, 1, 23), date(2031, 6, 24), date(2031, 10, 1)),
    2032: (date(2032, 2, 11), date(2032, 6, 12), date(2032, 9, 19)),
    2033: (date(2033, 1, 31), date(2033, 6, 1), date(2033, 9, 8)),
    2034: (date(2034, 2, 19), date(2034, 6, 20), date(2034, 9, 27)),
    2035: (date(2035, 2, 8), date(2035, 6, 10), date(2035, 9, 16)),
}
LAST_YEAR = max(_LUNAR)


class UnknownLunarYear(LookupError):
    """The lunar festivals of a year outside the table are not known here."""


def qingming(year: int) -> date:
    """The Qingming solar term of ``year`` (4 or 5 April)."""
    terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 30))
    return next(day for day, name in terms if name == "清明")


def solar_holidays(year: int) -> frozenset[date]:
    """The statutory days that need no lunar calendar: New Year, Qingming, Labour Day, National Day."""
    return frozenset({date(year, 1, 1), qingming(year), date(year, 5, 1), date(year, 5, 2),
                      date(year, 10, 1), date(year, 10, 2), date(year, 10, 3)})


def statutory_holidays(year: int) -> frozenset[date]:
    """Every statutory holiday of ``year`` (13 days, some may coincide), or ``UnknownLunarYear``."""
    if year not in _LUNAR:
        raise UnknownLunarYear(f"the statutory holidays of {year} are known only for {FIRST_YEAR}-{LAST_YEAR} "
                               "(the lunar festivals come from a table)")
    new_year, dragon_boat, mid_autumn = _LUNAR[year]
    spring = {new_year + timedelta(days=n) for n in range(-1, 3)}  # the eve and the first three days
    return solar_holidays(year) | spring | {dragon_boat, mid_autumn}

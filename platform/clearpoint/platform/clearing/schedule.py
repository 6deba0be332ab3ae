"""When clearing periods end: hourly, daily at a UTC time of day, or a cron expression (croniter
parses and steps it; five fields, in UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

DEFAULT = "daily@00:00"
# How long a clearing run's claim on the lease lasts unless renewed (kept here, with the schedule,
# because the command line reads both without loading the database stack).
DEFAULT_LEASE_SECONDS = 30.0
_DAILY = re.compile(r"daily(?:@([01][0-9]|2[0-3]):([0-5][0-9]))?")
_US = timedelta(microseconds=1)


class ScheduleInvalid(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Schedule:
    """The cuts that end clearing periods: every time the cron expression names, in UTC."""

    spec: str  # as the operator wrote it
    cron: str

    def next_cut(self, after_us: int) -> int:
        """The first cut strictly after `after_us`."""
        return _us(croniter(self.cron, _time(after_us)).get_next(datetime))

    def cut_at_or_before(self, at_us: int) -> int:
        """The last cut at or before `at_us`: where the period holding `at_us` began."""
        return _us(croniter(self.cron, _time(at_us) + _US).get_prev(datetime))


def parse(spec: str) -> Schedule:
    """`hourly`, `daily` (at 00:00 UTC), `daily@HH:MM` (UTC), or a five-field cron expression such
    as `0 */6 * * *`."""
    text = spec.strip()
    if text == "hourly":
        return Schedule(spec, "0 * * * *")
    daily = _DAILY.fullmatch(text)
    if daily is not None:
        hour, minute = (int(daily[1]), int(daily[2])) if daily[1] else (0, 0)
        return Schedule(spec, f"{minute} {hour} * * *")
    if len(text.split()) == 5 and croniter.is_valid(text):
        return Schedule(spec, text)
    raise ScheduleInvalid(
        f"clearing schedule {spec!r} is not 'hourly', 'daily', 'daily@HH:MM' (UTC) or a five-field cron"
        " expression such as '0 */6 * * *'"
    )


def _time(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _us(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // _US


def rfc3339(us: int) -> str:
    """A time as statements write it: UTC, to the microsecond only where it has them."""
    at = _time(us)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{at.microsecond:06d}Z" if at.microsecond else "Z")

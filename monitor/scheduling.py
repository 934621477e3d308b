"""Schedules: one APScheduler job per (monitor, endpoint). The only module importing apscheduler.

Jobs live in APScheduler 3.11's SQLAlchemy job store, in the monitor's own database (the
engine is handed in, configured like the store's: WAL and busy timeout on SQLite), so
fire times survive restarts: a fire time missed while the daemon was down runs once at
start (coalesced) if it is within the misfire grace time. A job does nothing but hand a
`RunSpec` to `submit`, the one seam between scheduling and execution (docs/architecture.md);
overlap and catch-up are the executor's business, not the scheduler's.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import DBAPIError

from monitor.config import ScheduleSettings, Settings
from monitor.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass(frozen=True, slots=True)
class RunSpec:
    """A request to run one monitor against one endpoint."""

    monitor: str
    endpoint: str
    trigger: str = "schedule"


Submit = Callable[[RunSpec], Awaitable[object]]

# Jobs are persisted by reference ("monitor.scheduling:fire"), so the callable that a
# fired job reaches must be found through a module-level registry keyed by instance.
_SUBMITTERS: dict[str, Submit] = {}


async def fire(instance: str, monitor: str, endpoint: str) -> None:
    """The persisted job target: forwards to the live process's `submit`."""
    submit = _SUBMITTERS.get(instance)
    if submit is not None:
        await submit(RunSpec(monitor, endpoint, "schedule"))


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    ("minute", "minute"),
    ("hour", "hour"),
    ("day of month", "day"),
    ("month", "month"),
    ("day of week", "day_of_week"),
)


def _day_number(token: str) -> int:
    low = token.lower()
    if low in _DAY_NAMES:
        return _DAY_NAMES.index(low)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7  # 0 and 7 are both Sunday
    raise ValueError(f"{token!r} is not a day (0-7 or sun-sat)")


def crontab_days(field: str) -> str:
    """A crontab day-of-week field as APScheduler day names.

    Crontab counts 0 (or 7) as Sunday; APScheduler 3 counts 0 as Monday, so numbers are
    translated to names: `1-5` becomes `mon,tue,wed,thu,fri`, `*/2` `sun,tue,thu,sat`.
    """
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _day_number(a), _day_number(b)
            if b.strip() == "7":
                last = 7  # `1-7` runs Monday through Sunday
            if last < first:
                raise ValueError(f"range {span!r} runs backwards")
        else:
            first = last = _day_number(span)
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _cron_trigger(expr: str, tz: ZoneInfo, jitter: int | None) -> CronTrigger | OrTrigger:
    minute, hour, day, month, dow = expr.split()
    values = {"minute": minute, "hour": hour, "day": day, "month": month}
    for name, key in _FIELDS:
        try:
            if key == "day_of_week":
                dow = crontab_days(dow) if dow != "*" else dow
                CronTrigger(day_of_week=dow, timezone=tz)
            else:
                CronTrigger(**{key: values[key]}, timezone=tz)
        except ValueError as exc:
            detail = str(exc)
            if detail.startswith("Error validating expression"):
                detail = detail.partition(": ")[2]
            value = expr.split()[[k for _, k in _FIELDS].index(key)]
            raise ValueError(f"invalid cron {expr!r}: {name} field {value!r}: {detail}") from None
    if day != "*" and dow != "*":
        # crontab fires when EITHER the day of month OR the day of week matches
        return OrTrigger(
            [
                CronTrigger(**values, timezone=tz),
                CronTrigger(**{**values, "day": "*"}, day_of_week=dow, timezone=tz),
            ],
            jitter=jitter,
        )
    return CronTrigger(**values, day_of_week=dow, timezone=tz, jitter=jitter)


def build_trigger(schedule: ScheduleSettings) -> CronTrigger | IntervalTrigger | OrTrigger:
    """An APScheduler trigger with crontab semantics; ValueError names a bad field or zone."""
    try:
        tz = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {schedule.timezone!r} (expected an IANA name such as "
            "UTC or Europe/Berlin)"
        ) from None
    jitter = int(schedule.jitter) or None
    if schedule.cron is not None:
        return _cron_trigger(schedule.cron, tz, jitter)
    assert schedule.every is not None  # noqa: S101 - guaranteed by ScheduleSettings
    try:
        return IntervalTrigger(seconds=schedule.every, timezone=tz, jitter=jitter)
    except OverflowError:
        raise ValueError(f"interval of {schedule.every:g} seconds is too large") from None


def check_schedules(settings: Settings) -> None:
    """Validate every schedule the way the scheduler will read it (for check-config)."""
    problems = []
    now = datetime.now(UTC)
    for i, mon in enumerate(settings.monitors):
        if mon.schedule is None:
            continue
        try:
            build_trigger(mon.schedule)
        except ValueError as exc:
            if str(exc).startswith("unknown time zone"):
                field = "timezone"
            else:
                field = "cron" if mon.schedule.cron is not None else "every"
            problems.append(f"{settings.where(('monitors', i, 'schedule', field))}: {exc}")
        try:  # the scheduler adds up to `jitter` seconds to every fire time
            now + timedelta(seconds=mon.schedule.jitter)
        except OverflowError:
            problems.append(
                f"{settings.where(('monitors', i, 'schedule', 'jitter'))}: "
                f"jitter of {mon.schedule.jitter:g} seconds is too large"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def schedule_interval(schedule: ScheduleSettings, now: datetime) -> float:
    """Seconds between two fire times (for staleness alerts); for cron, the next gap after now."""
    if schedule.every is not None:
        return schedule.every
    trigger = build_trigger(schedule.model_copy(update={"jitter": 0.0}))
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    return (second - first).total_seconds() if first and second else 0.0


class Scheduler:
    """Keeps APScheduler's jobs in step with the configured monitors."""

    def __init__(
        self,
        engine: Engine,
        *,
        instance: str = "monitor",
        misfire_grace: float = 3600.0,
    ) -> None:
        self._instance = instance
        self._store = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")
        self._scheduler = AsyncIOScheduler(
            jobstores={"default": self._store},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(misfire_grace),
            },
            timezone="UTC",
        )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self, settings: Settings, submit: Submit, *, paused: bool = False) -> None:
        """Register `submit` as the target of fire times, sync jobs with the settings,
        start firing.

        A replica that is not the leader starts `paused`: it keeps the stored jobs in
        step with its config but fires nothing until `resume`.
        """
        _SUBMITTERS[self._instance] = submit
        self._create_jobs_table()
        self._scheduler.start(paused=True)
        self.sync(settings)
        if not paused:
            self._scheduler.resume()

    def _create_jobs_table(self, attempts: int = 5) -> None:
        """Create APScheduler's table before the scheduler does: replicas starting together
        on an empty PostgreSQL race in CREATE TABLE (its checkfirst is not atomic), and the
        loser's error would stop it. The loser retries and finds the table there."""
        for attempt in range(attempts):
            try:
                self._store.jobs_t.create(self._store.engine, checkfirst=True)
            except DBAPIError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
            else:
                return

    def resume(self) -> None:
        """Start firing (this replica became the leader)."""
        if self._scheduler.running:
            self._scheduler.resume()

    def wakeup(self) -> None:
        """Re-read the job store now: other replicas may have edited schedules."""
        if self._scheduler.running:
            self._scheduler.wakeup()

    def shutdown(self) -> None:
        """Stop firing; jobs stay stored for the next start."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        _SUBMITTERS.pop(self._instance, None)

    def pause(self) -> None:
        """Stop firing new runs (shutdown in progress) without touching stored jobs."""
        if self._scheduler.running:
            self._scheduler.pause()

    def sync(self, settings: Settings) -> dict[str, str]:
        """Add, change and remove jobs; unchanged jobs keep their next fire time."""
        wanted: dict[str, tuple[str, str, ScheduleSettings]] = {}
        for mon in settings.monitors:
            if mon.schedule is None:
                continue
            for ep in mon.endpoints:
                wanted[job_id(mon.name, ep)] = (mon.name, ep, mon.schedule)
        changes: dict[str, str] = {}
        existing = {job.id: job for job in self._scheduler.get_jobs()}
        for jid, job in existing.items():
            if jid not in wanted:
                job.remove()
                changes[jid] = "removed"
        for jid, (mon_name, ep, schedule) in wanted.items():
            fingerprint = _fingerprint(schedule, self._instance)
            current = existing.get(jid)
            if current is not None and current.name == fingerprint:
                continue
            self._scheduler.add_job(
                fire,
                trigger=build_trigger(schedule),
                args=(self._instance, mon_name, ep),
                id=jid,
                name=fingerprint,
                replace_existing=True,
            )
            changes[jid] = "changed" if current is not None else "added"
        return changes

    def next_fire_times(self) -> dict[tuple[str, str], datetime | None]:
        """(monitor, endpoint) -> next fire time, for the API."""
        out: dict[tuple[str, str], datetime | None] = {}
        for job in self._scheduler.get_jobs():
            _, mon, ep = job.args
            out[(mon, ep)] = job.next_run_time
        return out


def job_id(monitor: str, endpoint: str) -> str:
    """The stable id of the job for one (monitor, endpoint)."""
    return f"{monitor}@{endpoint}"


def _fingerprint(schedule: ScheduleSettings, instance: str) -> str:
    raw = f"{instance}|{schedule.model_dump_json()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]

"""The rehearsal clock: scenario time runs `speed` times faster than the wall clock.

Everything stored in the emulator carries real (wall) timestamps, so deployed code that asks CloudWatch for
"the metrics since the stage started" finds them. Scenario time is what the rehearsal reasons in: traffic
rates, fault times, alarm periods (a 5-minute alarm period is 5 scenario minutes) and the report. Wait states
of the state machine sleep in wall seconds, so stage durations handed to it are scenario seconds / speed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass
class RehearsalClock:
    """Maps wall time to scenario seconds since the start of the rehearsal (t = 0)."""

    speed: float
    wall_start: float = field(default_factory=time.time)

    def now(self) -> float:
        """Scenario seconds elapsed."""
        return (time.time() - self.wall_start) * self.speed

    def to_scenario(self, wall: float | datetime) -> float:
        """Scenario seconds of a wall timestamp (epoch seconds or aware datetime)."""
        if isinstance(wall, datetime):
            wall = wall.timestamp()
        return (wall - self.wall_start) * self.speed

    def to_wall(self, scenario_seconds: float) -> float:
        """Wall epoch seconds of a scenario time."""
        return self.wall_start + scenario_seconds / self.speed

    def wall_datetime(self, scenario_seconds: float) -> datetime:
        """Aware UTC datetime of a scenario time (what is stored in the emulator)."""
        return datetime.fromtimestamp(self.to_wall(scenario_seconds), tz=timezone.utc)

    def wall_seconds(self, scenario_seconds: float) -> float:
        """A scenario duration in wall seconds."""
        return scenario_seconds / self.speed

    def sleep_until(self, scenario_seconds: float) -> None:
        """Block until the scenario clock reaches `scenario_seconds`."""
        remaining = self.to_wall(scenario_seconds) - time.time()
        if remaining > 0:
            time.sleep(remaining)


def fmt(scenario_seconds: float) -> str:
    """Scenario time as T+HH:MM:SS."""
    sign = "-" if scenario_seconds < 0 else "+"
    total = int(abs(scenario_seconds))
    return f"T{sign}{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def fmt_duration(seconds: float) -> str:
    """A scenario duration as '12m 30s' / '1h 05m'."""
    total = int(round(seconds))
    if total >= 3600:
        return f"{total // 3600}h {total % 3600 // 60:02d}m"
    if total >= 60:
        return f"{total // 60}m {total % 60:02d}s"
    return f"{total}s"

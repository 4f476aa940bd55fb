"""The in-process Lambda invocations of a rehearsal, in call order with their scenario time: what the report's
reaction times are read from (a gate's time is when the deployed rollout-steps function returned its decision,
not when the status poll noticed it; a rollback's when a function restored the listener). Thread-safe: the
emulator's functions run on its threads."""

from __future__ import annotations

import threading
from typing import Any

from kanaria import names


class InvocationLog:
    """(scenario seconds, function name, invocation) of every in-process invocation, appended as they finish."""

    def __init__(self, prefix: str):
        self._prefix = prefix
        self._entries: list[tuple[float, str, Any]] = []
        self._lock = threading.Lock()

    def record(self, at: float, invocation: Any) -> None:
        """One finished invocation (a moto_adaptations.Invocation) at scenario time `at`."""
        with self._lock:
            self._entries.append((at, invocation.function_name, invocation))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def since(self, index: int) -> tuple[list[tuple[float, str, Any]], int]:
        """The entries from `index` on, and the index after them (to read incrementally)."""
        with self._lock:
            return self._entries[index:], len(self._entries)

    def summary(self) -> list[tuple[float, str, str | None, float]]:
        """(at, function, error, seconds) of every invocation, for the report."""
        with self._lock:
            return [
                (at, name, getattr(inv, "error", None), getattr(inv, "seconds", 0.0)) for at, name, inv in self._entries
            ]

    def results(self, since: int, kind: str) -> list[tuple[float, dict[str, Any]]]:
        """(scenario seconds, result) of the `kind` function's invocations since index `since` that returned a JSON
        object, in call order."""
        function = names.function_name(self._prefix, kind)
        items, _ = self.since(since)
        return [(at, inv.result) for at, name, inv in items if name == function and isinstance(inv.result, dict)]

    def rollback_done(self, since: int) -> tuple[float, str] | None:
        """When the listener was first restored (scenario seconds) and by what: the rollback function returning
        rolled_back, or the reconciler reporting its rollback of a stranded canary."""
        done = [
            (at, "rollback function")
            for at, result in self.results(since, names.FUNCTION_ROLLBACK)
            if result.get("status") == "rolled_back"
        ]
        done += [
            (at, "reconciler")
            for at, result in self.results(since, names.FUNCTION_RECONCILER)
            if (result.get("rolled_back") or {}).get("status") == "rolled_back"
        ]
        return min(done) if done else None

    def decided_at(self, since: int, rollout_id: str, decision: str) -> float | None:
        """When the rollout-steps function last returned this decision for the rollout (scenario seconds): the
        gate's own time, which the status poll sees up to a poll interval later."""
        return next(
            (
                at
                for at, result in reversed(self.results(since, names.FUNCTION_ROLLOUT_STEPS))
                if result.get("rollout_id") == rollout_id and (result.get("progress") or {}).get("decision") == decision
            ),
            None,
        )

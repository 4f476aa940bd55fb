"""The scenario's rollback_function_failure faults: the deployed rollback function raises while one lasts (the
emulator calls `before_invoke` before every in-process invocation)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from kanaria_tools.rehearsal.scenario import Fault

FAULT_KIND = "rollback_function_failure"


@dataclass
class _Armed:
    fault: Fault
    started: float  # scenario seconds: the phase's start
    left: int  # failures still to inject


class RollbackFunctionFaults:
    """The rollback_function_failure faults of the running rollout phase."""

    def __init__(self, rollback_function: str):
        self._function = rollback_function
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._now: Callable[[], float] = lambda: 0.0

    def arm(self, faults: tuple[Fault, ...], started: float, now: Callable[[], float]) -> None:
        """The phase's faults of this kind, from its start (`now`: the scenario clock)."""
        with self._lock:
            self._now = now
            self._armed = [_Armed(f, started, f.failures or 0) for f in faults if f.kind == FAULT_KIND]

    def disarm(self) -> None:
        """The phase has ended."""
        with self._lock:
            self._armed = []

    @property
    def armed(self) -> bool:
        """Whether the running phase has such a fault (spent or not)."""
        with self._lock:
            return bool(self._armed)

    def before_invoke(self, function_name: str, event: Any) -> None:
        """Raise in the rollback function while an armed fault is active and has failures left."""
        if function_name != self._function:
            return
        with self._lock:
            for entry in self._armed:
                fault = entry.fault
                if entry.left > 0 and fault.active((self._now() - entry.started) / 60):
                    entry.left -= 1
                    raise RuntimeError(
                        f"injected fault: {fault.description or 'the rollback function is broken'} "
                        f"(failure {(fault.failures or 0) - entry.left} of {fault.failures})"
                    )

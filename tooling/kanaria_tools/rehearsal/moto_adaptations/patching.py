"""Reversible patching of moto (every change undone in reverse order by `revert()`), and the hooks the
rehearsal plugs into the adapted emulator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, MutableMapping


class Patcher:
    """setattr/dict changes that can be undone in reverse order."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        had = name in vars(target) if isinstance(target, type) else hasattr(target, name)
        old = vars(target).get(name) if isinstance(target, type) else getattr(target, name, None)
        setattr(target, name, value)

        def undo() -> None:
            if had:
                setattr(target, name, old)
            else:
                delattr(target, name)

        self._undo.append(undo)

    def setitem(self, target: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        had, old = key in target, target.get(key)
        target[key] = value
        self._undo.append(lambda: target.__setitem__(key, old) if had else target.pop(key, None))

    def call_on_revert(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def revert(self) -> None:
        while self._undo:
            self._undo.pop()()


@dataclass
class Hooks:
    """What the rehearsal plugs into the adapted emulator."""

    # Called after every in-process Lambda invocation (function name, event, result or error, seconds).
    on_invoke: Callable[["Invocation"], None] | None = None
    # Maps the moment a function printed an EMF record to the metric timestamp (the rehearsal clock).
    metric_time: Callable[[], datetime] | None = None
    # Called before an in-process function runs (function name, event); whatever it raises is the function's error
    # (the rehearsal's injected faults of a function).
    before_invoke: Callable[[str, Any], None] | None = None
    # Seconds an in-process invocation may wait for another one to finish before failing loudly.
    invoke_lock_timeout: float = 120.0


@dataclass
class Invocation:
    """One in-process Lambda invocation."""

    function_name: str
    event: Any
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    logs: str = ""
    warning: str | None = None

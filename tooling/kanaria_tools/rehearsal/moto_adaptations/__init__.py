"""Every adaptation of the local AWS emulator (moto, pinned) that the rehearsal needs, and nothing else.

The rehearsal deploys the real CDK app into moto's server running in this process. moto 5.2.5 differs from
AWS in ways that would make that deployment silently wrong; each difference is handled here, named in
ADAPTATIONS (shown by `kanaria demo --list-adaptations` and in docs/rehearsal.md) and covered by
tests/unit/rehearsal/test_moto_adaptations.py, which first asserts the unadapted moto still behaves as
measured, so an upgrade that changes the behaviour fails loudly instead of quietly double-fixing it.

Adaptations are reversible (`apply()` returns a handle whose `revert()` restores moto), so tests can use them
without leaking into other tests in the same worker.
"""

from __future__ import annotations

from kanaria_tools.rehearsal.moto_adaptations.catalogue import (
    ADAPTATIONS,
    MOTO_VERSION,
    Adaptation,
    AdaptationError,
    check_moto_version,
)
from kanaria_tools.rehearsal.moto_adaptations.cloudformation import _adapt_cloudformation, cfn_attribute
from kanaria_tools.rehearsal.moto_adaptations.cloudwatch import (
    _adapt_cloudwatch,
    alarm_actions_enabled,
    metric_datums,
    percent_rank,
    percentile,
    record_alarm_state,
    register_alarm,
)
from kanaria_tools.rehearsal.moto_adaptations.dynamodb import (
    _adapt_dynamodb,
    _serialize_dynamodb_writes,
    atomic_dynamodb_writes,
)
from kanaria_tools.rehearsal.moto_adaptations.lambda_functions import (
    FakeLambdaContext,
    _adapt_lambda,
    _restore_environment,
    emf_metric_data,
    encode_log_result,
    prepare_environment,
)
from kanaria_tools.rehearsal.moto_adaptations.patching import Hooks, Invocation, Patcher
from kanaria_tools.rehearsal.moto_adaptations.server import port_is_free, start_server
from kanaria_tools.rehearsal.moto_adaptations.step_functions import _adapt_step_functions


class Applied:
    """Handle returned by apply(): `revert()` restores moto exactly."""

    def __init__(self, patcher: Patcher, hooks: Hooks):
        self._patcher = patcher
        self.hooks = hooks

    def revert(self) -> None:
        global _ACTIVE
        self._patcher.revert()
        _ACTIVE = None


_ACTIVE: Applied | None = None


def apply(hooks: Hooks | None = None) -> Applied:
    """Apply every adaptation (idempotent within a process: returns the active handle)."""
    global _ACTIVE
    check_moto_version()
    if _ACTIVE is not None:
        if hooks is not None:
            _ACTIVE.hooks.on_invoke = hooks.on_invoke
            _ACTIVE.hooks.metric_time = hooks.metric_time
            _ACTIVE.hooks.before_invoke = hooks.before_invoke
        return _ACTIVE
    patcher = Patcher()
    hooks = hooks or Hooks()
    _adapt_cloudformation(patcher)
    _adapt_dynamodb(patcher)
    _serialize_dynamodb_writes(patcher)
    _adapt_step_functions(patcher)
    _adapt_lambda(patcher, hooks)
    patcher.call_on_revert(_restore_environment)
    _adapt_cloudwatch(patcher)
    _ACTIVE = Applied(patcher, hooks)
    return _ACTIVE


def active() -> Applied | None:
    """The applied adaptations, if any."""
    return _ACTIVE


__all__ = [
    "ADAPTATIONS",
    "Adaptation",
    "AdaptationError",
    "Applied",
    "FakeLambdaContext",
    "Hooks",
    "Invocation",
    "MOTO_VERSION",
    "active",
    "alarm_actions_enabled",
    "apply",
    "atomic_dynamodb_writes",
    "cfn_attribute",
    "check_moto_version",
    "emf_metric_data",
    "encode_log_result",
    "metric_datums",
    "percent_rank",
    "percentile",
    "port_is_free",
    "prepare_environment",
    "record_alarm_state",
    "register_alarm",
    "start_server",
]

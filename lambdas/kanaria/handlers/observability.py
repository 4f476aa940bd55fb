"""The handlers' Powertools observability in one place: each handler module takes its Logger, Tracer and Metrics
from `observability()` when it is imported.

The names come from the function's environment, which the CDK construct sets (infra/constructs/python_function.py):
the log and trace service from POWERTOOLS_SERVICE_NAME (`kanaria-<function>`), the metric namespace from
POWERTOOLS_METRICS_NAMESPACE. Powertools reads them when the objects are created, so each handler gets its own
function's names, also where several functions share one process (the local rehearsal imports each handler under
its function's environment).
"""

from __future__ import annotations

from typing import NamedTuple

from aws_lambda_powertools import Logger, Metrics, Tracer


class Observability(NamedTuple):
    """A handler's logger, tracer and metrics."""

    logger: Logger
    tracer: Tracer
    metrics: Metrics


def observability(*, service_dimension: bool = True) -> Observability:
    """Logger, Tracer and Metrics of the importing handler; `service_dimension=False` emits its metrics without the
    "service" dimension (for the dashboards and alarms that match an exact dimension set)."""
    return Observability(Logger(), Tracer(), Metrics() if service_dimension else Metrics(service=""))

"""The handlers' observability preamble: names from the function's environment, read when a handler is imported."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from kanaria.handlers.observability import observability


def _emitted(metrics) -> dict:
    try:
        metrics.add_metric(name="Probe", unit=MetricUnit.Count, value=1)
        return metrics.serialize_metric_set()
    finally:
        metrics.clear_metrics()


def test_service_and_namespace_come_from_the_environment_at_creation(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kanaria-assign")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KanariaProbe")
    assign = observability()
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kanaria-experiments")
    experiments = observability()
    # two handlers in one process (the rehearsal) keep their own function's names
    assert (assign.logger.service, assign.tracer.service) == ("kanaria-assign", "kanaria-assign")
    assert experiments.logger.service == "kanaria-experiments"
    record = _emitted(assign.metrics)
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "KanariaProbe"
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert record["service"] == "kanaria-assign"


def test_metrics_without_the_service_dimension_keep_an_exact_dimension_set(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kanaria-rollout-steps")
    metrics = observability(service_dimension=False).metrics
    metrics.add_dimension(name="target", value="canary")
    record = _emitted(metrics)
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["target"]]
    assert "service" not in record

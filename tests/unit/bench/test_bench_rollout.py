"""Pure helpers of the Rollout section (reading result.json, scenario files and the synthesized alarms) and the
section splicing of `python -m kanaria_tools.bench --only`; no rehearsal, no CDK."""

from kanaria_tools.bench.cli import splice
from kanaria_tools.bench.rollout import (
    FaultScenario,
    fault_text,
    phase_ok,
    phase_row,
    reacting,
    rollback_trigger,
    rollout_phase,
    stage_plan,
)
from kanaria_tools.bench.rollout_alarms import alarm_table, alarm_windows, duration
from kanaria_tools.bench.rollout_runs import failure_line
from kanaria_tools.rehearsal.scenario import RolloutPhase, load_scenario

ROLLOUT = RolloutPhase.model_validate(
    {
        "name": "error-spike",
        "baseline": "v1",
        "candidate": "v2",
        "stages": [{"percent": 5, "minutes": 20}, {"percent": 25, "minutes": 20}],
        "gates": {"min_observations": 150},
        "faults": [{"kind": "error_spike", "at_minute": 28, "rate": 0.06}],
        "expect": "rolled_back",
    }
)
PHASE = {
    "name": "error-spike",
    "kind": "rollout",
    "expected": "rolled_back",
    "outcome": "rolled_back",
    "ok": True,
    "started_at": 42.0,
    "ended_at": 2265.0,
    "fault_at": 1722.0,
    "rollback_completed_at": 2078.0,
    "fault_to_rollback_seconds": 356.4,
    "reactions": [
        {"at": 300.0, "kind": "alarm", "what": "kanaria-canary-error-rate INSUFFICIENT_DATA -> ALARM"},  # before
        {"at": 1722.0, "kind": "fault", "what": "fault: error_spike on the canary"},
        {"at": 2050.0, "kind": "gate", "what": "gate FAIL -> rollback: error_rate: canary error rate 2.295% >= 2.000%"},
        {"at": 2078.0, "kind": "rollback", "what": "rollback function restored primary 100 / canary 0"},
        {"at": 2090.0, "kind": "gate", "what": "gate PASS -> rollback: "},
        {"at": 2100.0, "kind": "alarm", "what": "kanaria-canary-error-rate OK -> ALARM"},
        {
            "at": 2100.0,
            "kind": "composite",
            "what": "kanaria-canary-critical OK -> ALARM -> lambda kanaria-rollback, sns kanaria-alerts",
        },
        {"at": 2400.0, "kind": "alarm", "what": "kanaria-canary-error-rate ALARM -> OK"},
    ],
}
RESULT = {
    "scenario": "error-spike",
    "ok": True,
    "speed": 60.0,
    "deploy_seconds": 24.8,
    "phases": [PHASE],
    "alerts": [
        {"at": 2102.0, "subject": "[Kanaria] ROLLBACK error-spike-error-spike-e63642 at canary-25 (gate_failed)"},
        {"at": 2148.0, "subject": 'ALARM: "kanaria-canary-critical" in Asia Pacific (Tokyo)'},
    ],
}
CASE = FaultScenario("5xx error spike", "error-spike", "error-spike")


def test_durations_and_fault_and_plan_texts():
    assert [duration(s) for s in (0, 59.6, 356.4, 3600, 3725)] == ["0s", "1m 00s", "5m 56s", "1h 00m", "1h 02m"]
    assert fault_text(ROLLOUT) == "error_spike 6% on the canary from +28 min"
    assert stage_plan(ROLLOUT) == (
        "5% 20 min → 25% 20 min → approval → 100%, gate checks every 1 min, gates min_observations 150"
    )
    assert fault_text(None) == "" and stage_plan(None) == "?"


def test_every_benched_fault_scenario_has_its_rollout_phase_and_fault():
    from kanaria_tools.bench.rollout import FAULT_SCENARIOS

    for case in FAULT_SCENARIOS:
        rollout = rollout_phase(load_scenario(case.scenario), case.phase)
        assert rollout is not None and rollout.expect == "rolled_back" and fault_text(rollout), case


def test_reactions_after_the_fault_in_order_with_what_came_after_the_rollback():
    assert reacting(PHASE) == [
        "gate FAIL → rollback (error_rate: canary error rate 2.295% >= 2.000%) +5m 28s",
        "rollback function done (100/0) +5m 56s",
        "alarm `kanaria-canary-error-rate` ALARM +6m 18s (after the rollback)",
        "composite `kanaria-canary-critical` ALARM → lambda kanaria-rollback, sns kanaria-alerts +6m 18s (after the rollback)",
    ]
    late_gate = {**PHASE, "rollback_completed_at": 2000.0}
    assert reacting(late_gate)[0].endswith("+5m 28s (after the rollback)")  # gate times are the steps call's own
    assert rollback_trigger(RESULT["alerts"], 42.0, 2265.0) == ("gate_failed", "canary-25")
    assert rollback_trigger(RESULT["alerts"], 0.0, 100.0) is None


def test_rows_show_the_outcome_and_do_not_hide_a_mismatch():
    row = phase_row(CASE, ROLLOUT, RESULT, 68.2)
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[0] == (
        "5xx error spike<br>error_spike 6% on the canary from +28 min<br>at T+00:28:42, 1m 18s before a"
        " 5-min alarm boundary"
    )
    assert cells[1:4] == ["`error-spike`", "rolled_back", "rolled_back (as expected)"]
    assert cells[4].startswith("rollback trigger **gate_failed** at canary-25; gate FAIL")
    assert cells[5:] == ["**5m 56s**", "68 s (deploy 25 s)"]
    assert phase_ok(RESULT, "error-spike") and not phase_ok(RESULT, "other") and not phase_ok(None, "error-spike")

    wrong = {
        **RESULT,
        "phases": [
            {
                **PHASE,
                "outcome": "completed",
                "ok": False,
                "rollback_completed_at": None,
                "fault_to_rollback_seconds": None,
                "reactions": [],
            }
        ],
        "alerts": [],
    }
    cells = phase_row(CASE, ROLLOUT, wrong, 90.0).strip("|").split(" | ")
    assert cells[3] == "**completed: NOT as expected**" and cells[5] == "no rollback"

    missing = phase_row(CASE, ROLLOUT, None, 12.0, failure="exit 1: port 5 in use | x")
    assert "**no result**: exit 1: port 5 in use \\| x" in missing and "| rolled_back |" in missing


def test_alarm_windows_from_a_synthesized_template():
    template = {
        "Resources": {
            "Err": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "err",
                    "AlarmDescription": "5xx > 2% | 5 min",
                    "EvaluationPeriods": 1,
                    "DatapointsToAlarm": 1,
                    "Threshold": 2,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                    "Metrics": [
                        {"Id": "e", "Expression": "a / b"},
                        {"Id": "a", "MetricStat": {"Period": 300}},
                        {"Id": "b", "MetricStat": {"Period": 300}},
                    ],
                },
            },
            "Lat": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "lat",
                    "EvaluationPeriods": 3,
                    "DatapointsToAlarm": 2,
                    "Period": 300,
                    "Threshold": 2,
                },
            },
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "kanaria-rollback"}},
            "Crit": {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "Properties": {
                    "AlarmName": "critical",
                    "AlarmRule": {
                        "Fn::Join": [
                            "",
                            [
                                '(ALARM("',
                                {"Fn::GetAtt": ["Err", "Arn"]},
                                '") OR ALARM("',
                                {"Fn::GetAtt": ["Lat", "Arn"]},
                                '"))',
                            ],
                        ]
                    },
                    "AlarmActions": [
                        {"Fn::GetAtt": ["Fn", "Arn"]},
                        {"Fn::ImportValue": "KanariaData:ExportsOutputRefAlertsTopic3414BE910C2DFF03"},
                    ],
                },
            },
        }
    }
    err, lat = alarm_windows(template)
    assert (err.name, err.period_s, err.datapoints, err.evaluation_periods) == ("err", 300, 1, 1)
    assert err.after_fault() == ("0s – 5m 00s", "5m 00s – 10m 00s")
    assert err.composites == ("critical",) and err.actions == ("lambda `kanaria-rollback`", "AlertsTopic (imported)")
    assert (lat.period_s, lat.datapoints, lat.missing) == (300, 2, "missing")
    assert lat.after_fault() == ("5m 00s – 10m 00s", "10m 00s – 15m 00s")
    table = alarm_table([err, lat])
    assert table[2] == (
        "| `err` | 5xx > 2% \\| 5 min | 5m 00s | 1 of 1 | notBreaching | `critical` → lambda"
        " `kanaria-rollback`, AlertsTopic (imported) | 0s – 5m 00s | 5m 00s – 10m 00s |"
    )


def test_failure_line_prefers_pip_errors():
    output = (
        "Traceback\n  File x\n\x1b[31mERROR: Could not find a version that satisfies numpy\x1b[0m\n"
        "ERROR: No matching distribution\nRuntimeError: Failed to bundle asset A\n"
    )
    assert failure_line(output) == "ERROR: Could not find a version that satisfies numpy"
    assert failure_line("a\nRuntimeError: boom\nlast") == "RuntimeError: boom"
    assert failure_line("") == "(no output)"


def test_splice_replaces_only_the_named_section():
    document = "# Benchmarks\n\nhead\n\n## Analysis\n\nold a\n\n## Rollout\n\nNot measured yet.\n"
    assert (
        splice(document, ["## Rollout\n\nnew r\n"])
        == "# Benchmarks\n\nhead\n\n## Analysis\n\nold a\n\n## Rollout\n\nnew r\n"
    )
    assert splice(document, ["## Analysis\n\nnew a\n"]) == (
        "# Benchmarks\n\nhead\n\n## Analysis\n\nnew a\n\n## Rollout\n\nNot measured yet.\n"
    )
    assert splice("# B\n", ["## New\n\nx\n"]) == "# B\n\n## New\n\nx\n"

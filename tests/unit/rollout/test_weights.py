"""Listener weights: stage targets, reading ELB actions, replacing the forward action, read-back differences and
what counts as a path to the canary (a weight, or membership while sticky)."""

from __future__ import annotations

import pytest

from kanaria.domain.rollout import (
    Forward,
    forward_differences,
    forward_of,
    primary_only,
    target_forward,
    with_forward,
    without_target_group,
)
from kanaria.errors import ValidationError

P = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/primary/1111"
C = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/canary/2222"


def test_stage_targets() -> None:
    assert target_forward(P, C, 5, 3600) == Forward(
        weights={P: 95, C: 5}, stickiness_enabled=True, stickiness_seconds=3600
    )
    assert target_forward(P, C, 100, 3600) == Forward(weights={C: 100})
    assert target_forward(P, C, 0, 3600) == Forward(weights={P: 100})
    assert primary_only(P) == Forward(weights={P: 100}, stickiness_enabled=False)


def test_action_config_sets_weights_and_stickiness_in_one_action() -> None:
    config = target_forward(P, C, 25, 600).to_action_config()
    assert config == {
        "TargetGroups": [{"TargetGroupArn": P, "Weight": 75}, {"TargetGroupArn": C, "Weight": 25}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 600},
    }
    assert primary_only(P).to_action_config()["TargetGroupStickinessConfig"] == {"Enabled": False}


def test_forward_of_reads_both_action_shapes() -> None:
    assert forward_of([{"Type": "forward", "TargetGroupArn": P}]) == Forward(weights={P: 1})
    weighted = forward_of(
        [
            {"Type": "authenticate-oidc", "Order": 1},
            {
                "Type": "forward",
                "Order": 2,
                "ForwardConfig": {
                    "TargetGroups": [{"TargetGroupArn": P, "Weight": 90}, {"TargetGroupArn": C, "Weight": 10}],
                    "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60},
                },
            },
        ]
    )
    assert weighted == Forward(weights={P: 90, C: 10}, stickiness_enabled=True, stickiness_seconds=60)
    assert forward_of([{"Type": "fixed-response"}]) is None


def test_with_forward_keeps_other_actions_and_their_order() -> None:
    actions = [
        {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {"Issuer": "i", "ClientId": "c"}},
        {"Type": "forward", "Order": 2, "TargetGroupArn": P},
    ]
    new = with_forward(actions, target_forward(P, C, 5, 60))
    assert new[0]["AuthenticateOidcConfig"]["UseExistingClientSecret"] is True
    assert new[1]["Order"] == 2 and "TargetGroupArn" not in new[1]
    assert new[1]["ForwardConfig"]["TargetGroups"][1] == {"TargetGroupArn": C, "Weight": 5}
    with pytest.raises(ValidationError):
        with_forward([{"Type": "fixed-response"}], primary_only(P))


def test_read_back_differences() -> None:
    expected = target_forward(P, C, 5, 3600)
    assert forward_differences(expected, expected) == []
    assert forward_differences(
        expected, Forward(weights={P: 93, C: 7}, stickiness_enabled=True, stickiness_seconds=3600)
    ) == [f"{C}: expected weight 5 (5.0%), found 7 (7.0%)", f"{P}: expected weight 95 (95.0%), found 93 (93.0%)"]
    # weights are relative: the same shares match, a missing group does not
    assert forward_differences(Forward(weights={C: 100}), Forward(weights={C: 1})) == []
    assert (
        forward_differences(
            expected, Forward(weights={P: 190, C: 10}, stickiness_enabled=True, stickiness_seconds=3600)
        )
        == []
    )
    assert forward_differences(primary_only(P), Forward(weights={P: 100, C: 0})) == [
        f"{C}: expected weight None (absent), found 0 (0.0%)"
    ]
    assert forward_differences(expected, Forward(weights={P: 95, C: 5})) == ["stickiness: expected True, found False"]
    assert forward_differences(expected, None) == ["the listener has no forward action"]


def test_a_sticky_canary_at_weight_zero_is_still_a_path() -> None:
    assert Forward(weights={P: 100, C: 0}, stickiness_enabled=True).reaches(C)
    assert not Forward(weights={P: 100, C: 0}).reaches(C)
    assert not primary_only(P).reaches(C)
    assert Forward(weights={P: 95, C: 5}).share(C) == 5


def test_closing_a_rule_removes_the_canary() -> None:
    assert without_target_group(Forward(weights={P: 50, C: 50}, stickiness_enabled=True), C, P) == Forward(
        weights={P: 50}
    )
    assert without_target_group(Forward(weights={C: 1}), C, P) == Forward(weights={P: 100})

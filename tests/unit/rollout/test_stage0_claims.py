"""Stage 0 outside the rehearsal: a deployment that stores evaluations does not take a request's word for it."""

from __future__ import annotations

import pytest

from kanaria.errors import ValidationError
from kanaria.logic.rollout_prepare import prepare
from tests.support.rollout_fakes import DEPLOYMENT, EXECUTION, request, services


def test_a_claimed_pass_without_a_stored_evaluation_is_refused_where_evaluations_are_stored():
    # Given a deployment with an evaluations table (nothing stored for this hash), offline evaluations not allowed
    svc = services()
    svc.evaluations = lambda config_hash: None
    with pytest.raises(ValidationError, match="claim is not evidence") as caught:
        prepare(svc, DEPLOYMENT, request(config_hash="cfg-claim"), EXECUTION + "r-claim", "r-claim")
    assert caught.value.field == "offline_evaluation"
    assert svc.store.get("r-claim") is None  # refused before anything is recorded


def test_the_rehearsal_and_tableless_deployments_still_take_the_claim():
    rehearsal = services()
    rehearsal.evaluations, rehearsal.allow_offline_evaluation = (lambda config_hash: None), True
    assert prepare(rehearsal, DEPLOYMENT, request(), EXECUTION + "r-1", "r-1").rollout.offline_evaluation.passed
    tableless = services()
    assert prepare(tableless, DEPLOYMENT, request(), EXECUTION + "r-2", "r-2").rollout.offline_evaluation.passed

"""The live canary judge: canary vs primary, minute by minute, per intent and overall (pure, no AWS).

evidence.py holds the statistic (a one-sided, anytime-valid change detector for a rate ratio); judge.py turns
the evidence of every (metric, intent) stream into ROLLBACK / PASS / CONTINUE with an overall false-rollback
budget. docs/rollouts.md ("The canary judge") states the guarantees and their assumptions.
"""

"""Canary evidence only from the deployment: an observation counts in the canary health series ({target: canary},
what the judge, the gates and the canary alarms read) only when its caller is the canary deployment itself, i.e.
its SigV4 identity is one of the deployment's canary observer roles. Anyone else allowed to call POST
/observations may still report experiment outcomes, but a `target: canary` from them is unverifiable: recorded
for the experiment, rejected for the canary series, and counted as rejected."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# arn:<partition>:iam::<account>:role/<path/><name>  and  arn:<partition>:sts::<account>:assumed-role/<name>/<session>
_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/(?:[\w+=,.@/-]*/)?(?P<name>[\w+=,.@-]+)$")
_SESSION = re.compile(
    r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<name>[\w+=,.@-]+)/[\w+=,.@-]+$"
)


class CanaryEvidence(str, Enum):
    """What a reported target does to the canary series."""

    COUNTED = "counted"  # the canary deployment's own report
    REJECTED = "rejected"  # target canary from a caller that is not the canary deployment: not counted
    NOT_CANARY = "not_canary"  # no target or target primary: the canary series is not concerned


@dataclass(frozen=True)
class CanaryObservers:
    """The IAM roles the canary deployment runs as (role ARNs), parsed once from the environment."""

    roles: frozenset[tuple[str, str, str]]  # (partition, account, role name)

    @classmethod
    def parse(cls, text: str) -> "CanaryObservers":
        """Comma-separated role ARNs; ValueError naming the first that is not one."""
        roles = set()
        for arn in (a.strip() for a in text.split(",")):
            if not arn:
                continue
            match = _ROLE.match(arn)
            if match is None:
                raise ValueError(f"not an IAM role ARN: {arn!r} (arn:aws:iam::<account>:role/<name>)")
            roles.add((match["partition"], match["account"], match["name"]))
        return cls(frozenset(roles))

    def includes(self, caller_arn: str) -> bool:
        """Whether the SigV4 caller (a role session or the role itself) is one of the canary roles."""
        match = _SESSION.match(caller_arn) or _ROLE.match(caller_arn)
        return match is not None and (match["partition"], match["account"], match["name"]) in self.roles


def canary_evidence(target: str | None, caller_arn: str, observers: CanaryObservers) -> CanaryEvidence:
    """Whether an observation reporting `target` counts in the canary series."""
    if target != "canary":
        return CanaryEvidence.NOT_CANARY
    return CanaryEvidence.COUNTED if observers.includes(caller_arn) else CanaryEvidence.REJECTED

"""The one place the tooling's boto3 Session is built: `--region`, `--profile` and `AWS_REGION` honoured.

boto3 itself reads `AWS_DEFAULT_REGION` and the profile's region but not `AWS_REGION` (the variable the other AWS
SDKs and the AWS CLI v2 read), so a region given by either is made explicit here. The session becomes boto3's
default session for the command (the data-access classes build their clients from it) and the previous default
comes back afterwards, so one command's `--region` never leaks into the next in-process call.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from kanaria.errors import ValidationError

ENV_REGION = "AWS_REGION"
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")  # ap-northeast-1, us-gov-west-1
PROFILE_PATTERN = re.compile(r"^[A-Za-z0-9_.@+=,:/-]{1,128}$")
NO_REGION = "no AWS region: give --region, set AWS_REGION, or configure a region for the profile"


@dataclass(frozen=True)
class AwsTarget:
    """Where a command's AWS calls go: region and profile (None: boto3's own resolution)."""

    region: str | None = None
    profile: str | None = None
    region_source: str = "--region"


def aws_target(region: str | None, profile: str | None, environ: Mapping[str, str] = os.environ) -> AwsTarget:
    """The validated target: `--region` first, then `AWS_REGION`; refuses malformed names before any AWS call."""
    source = "--region"
    if region is None and environ.get(ENV_REGION):
        region, source = environ[ENV_REGION], ENV_REGION
    if region is not None and not REGION_PATTERN.match(region):
        raise ValidationError(f"must be an AWS region name such as ap-northeast-1, got {region!r}", field=source)
    if profile is not None and not PROFILE_PATTERN.match(profile):
        raise ValidationError(f"must be an AWS config profile name, got {profile!r}", field="--profile")
    return AwsTarget(region, profile, source)


@contextmanager
def using(target: AwsTarget) -> Iterator[None]:
    """Make `target` boto3's default session for the duration of one command."""
    if target.region is None and target.profile is None:
        yield
        return
    import boto3
    from botocore.exceptions import ProfileNotFound

    previous = boto3.DEFAULT_SESSION
    try:
        boto3.setup_default_session(region_name=target.region, profile_name=target.profile)
    except ProfileNotFound:
        raise ValidationError(
            f"profile {target.profile!r} is not in the AWS config or credentials files", field="--profile"
        ) from None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = previous


def session() -> Any:
    """boto3's default session (the command's, inside `using`); ValidationError when it has no region."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    current = boto3.DEFAULT_SESSION
    if current is None or not current.region_name:
        raise ValidationError(NO_REGION, field="--region")
    return current


def client(service: str, **kwargs: Any) -> Any:
    """A client of the command's session."""
    return session().client(service, **kwargs)

"""The local AWS emulator: moto's server in this process, on loopback only, with dummy credentials."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from kanaria.errors import OperationalError

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# Variables that would point the rehearsal at a real account; removed while the emulator runs.
_REAL_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_SECURITY_TOKEN",
)


class EmulatorError(OperationalError):
    """The emulator could not start (port in use, moto failing) or answer."""


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalAws:
    """A running emulator and the environment that points AWS SDKs and the CDK CLI at it."""

    account: str
    region: str
    port: int
    _server: Any = None
    _saved_environ: dict[str, str | None] = field(default_factory=dict)
    adaptations: Any = None

    @property
    def endpoint(self) -> str:
        # localhost, not 127.0.0.1: with an IP address the CDK CLI's S3 client addresses the asset bucket
        # virtual-hosted style and moto answers "bucket does not exist".
        return f"http://localhost:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for this process and for subprocesses (the CDK CLI)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            **DUMMY_CREDENTIALS,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "MOTO_PORT": str(self.port),
        }

    @classmethod
    def start(cls, *, account: str, region: str, port: int | None = None, hooks: Any = None) -> "LocalAws":
        """Adapt moto, start its server on 127.0.0.1:port (a free one when None) and point this process at it."""
        from kanaria_tools.rehearsal import moto_adaptations

        try:
            moto_adaptations.check_moto_version()
        except moto_adaptations.AdaptationError as exc:
            raise EmulatorError(str(exc), field="moto") from None
        chosen = port or free_port()
        if not moto_adaptations.port_is_free(chosen):
            raise EmulatorError(f"port {chosen} in use", field="port")
        aws = cls(account=account, region=region, port=chosen)
        aws.adaptations = moto_adaptations.apply(hooks)
        try:
            aws._server = moto_adaptations.start_server(chosen)
        except moto_adaptations.AdaptationError as exc:
            aws.adaptations.revert()
            raise EmulatorError(str(exc), field="port" if "in use" in str(exc) else "emulator") from None
        aws._point_environment()
        aws._check_answers()
        return aws

    def _point_environment(self) -> None:
        for key in _REAL_AWS_VARIABLES:
            if key in os.environ:
                self._saved_environ[key] = os.environ.pop(key)
        for key, value in self.env().items():
            self._saved_environ.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _check_answers(self) -> None:
        try:
            identity = self.client("sts").get_caller_identity()
        except Exception as exc:  # noqa: BLE001 - any failure means the emulator is unusable
            self.stop()
            raise EmulatorError(
                f"the local AWS emulator on {self.endpoint} does not answer: {exc}", field="emulator"
            ) from None
        if identity.get("Account") != self.account:
            self.stop()
            raise EmulatorError(
                f"the emulator's account is {identity.get('Account')}, the app deploys to {self.account} "
                "(set kanaria:account to moto's default 123456789012)",
                field="account",
            )

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client talking to the emulator."""
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=120)
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint,
            config=config,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            **kwargs,
        )

    def stop(self) -> None:
        """Stop the server, undo the adaptations and restore this process's environment."""
        if self._server is not None:
            try:
                self._server.stop()
            finally:
                self._server = None
        if self.adaptations is not None:
            self.adaptations.revert()
            self.adaptations = None
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()

    def __enter__(self) -> "LocalAws":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Local (docker-free) bundling of Lambda dependencies into a layer with pip's manylinux wheels."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PYTHON_VERSION = "3.14"  # matches infra.constructs.python_function.RUNTIME
# Lambda's python3.14 runtime is Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels run there, and numpy and
# scipy publish their CPython 3.14 wheels only with that tag (manylinux2014 alone finds no numpy).
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
ROOT = Path(__file__).resolve().parents[2]
LAYERS_DIR = ROOT / "layers"

# numpy + scipy are 217 MB unzipped with their test suites; Lambda allows 250 MB with layers.
_PRUNE_GLOBS = ("numpy/**/tests", "scipy/**/tests", "**/__pycache__")


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Install a requirements file for manylinux x86_64 / CPython 3.14 into <output>/python."""

    def __init__(self, requirements: Path):
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *, image=None, **_: object) -> bool:  # noqa: ANN001 - jsii signature
        target = Path(output_dir) / "python"
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--quiet",
                "--no-compile",
                *platforms,
                "--implementation",
                "cp",
                "--python-version",
                PYTHON_VERSION,
                "--only-binary=:all:",
                "--target",
                str(target),
                "-r",
                str(self._requirements),
            ],
            check=True,
        )
        for pattern in _PRUNE_GLOBS:
            for folder in list(target.glob(pattern)):
                if folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
        return True


def layer_code(name: str, bundle: bool) -> lambda_.Code:
    """Code for the dependency layer `layers/<name>/requirements.txt`; bundled with pip when `bundle`."""
    source = LAYERS_DIR / name
    if not bundle:
        # The local rehearsal runs handlers from the source tree, so the layer only needs to exist.
        return lambda_.Code.from_asset(str(source))
    return lambda_.Code.from_asset(
        str(source),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("unused-local-bundling"),
            local=PipLayerBundling(source / "requirements.txt"),
        ),
    )


def function_code() -> lambda_.Code:
    """The runtime package `kanaria` (lambdas/: handlers, logic, domain, adapters) as one asset shared by every
    function. The tooling (tooling/kanaria_tools: CLI, rehearsal) is outside this folder, so it is never shipped
    and editing it changes no function's code hash (tests/infrastructure/test_code_asset.py)."""
    return lambda_.Code.from_asset(
        str(ROOT / "lambdas"),
        exclude=["**/__pycache__", "*.egg-info", "**/*.pyc"],
    )

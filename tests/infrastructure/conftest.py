"""One synthesis of the whole app per test session (each synth costs seconds of jsii)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra.app_builder import build_app


@pytest.fixture(scope="session")
def assembly_dir(tmp_path_factory) -> Path:
    """Synthesize every stack (cdk-nag runs as a validation plugin: synth fails on any unsuppressed finding)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(context={"kanaria:bundle": False}, outdir=str(outdir))
    build_app(app)
    app.synth()
    return outdir


@pytest.fixture(scope="session")
def templates(assembly_dir) -> dict[str, dict]:
    """Synthesized CloudFormation templates by stack name."""
    return {
        p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in assembly_dir.glob("*.template.json")
    }


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    """Resources of one type in a template."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def all_resources(templates: dict[str, dict], resource_type: str) -> dict[str, dict]:
    """Resources of one type across every stack, keyed 'Stack/LogicalId'."""
    return {f"{name}/{k}": v for name, t in templates.items() for k, v in resources(t, resource_type).items()}

"""The Lambda code asset every function shares holds the runtime package only: no tooling, nothing importing moto,
no test double (the offline model adapter).

Read from the synthesized cloud assembly (the session's synth in conftest): each function's S3Key names an asset
whose source folder, copied into cdk.out, is exactly what Lambda would receive.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.infrastructure.conftest import all_resources

_MOTO_IMPORT = re.compile(r"^\s*(import\s+moto\b|from\s+moto\b)", re.M)
_TOOLING_NAMES = {"kanaria_tools", "rehearsal", "cli"}


@pytest.fixture(scope="module")
def code_assets(assembly_dir: Path, templates: dict[str, dict]) -> dict[str, Path]:
    """Asset folder in cdk.out by handler, for every Lambda function of every stack."""
    sources: dict[str, Path] = {}
    for manifest in assembly_dir.glob("*.assets.json"):
        for asset_hash, entry in json.loads(manifest.read_text())["files"].items():
            sources[f"{asset_hash}.zip"] = assembly_dir / entry["source"]["path"]
    functions = all_resources(templates, "AWS::Lambda::Function")
    assets = {
        fn["Properties"]["Handler"]: sources[fn["Properties"]["Code"]["S3Key"]]
        for fn in functions.values()
        if fn["Properties"].get("Handler", "").startswith("kanaria.")
    }
    assert len(assets) >= 7, sorted(assets)  # experiments, assign, observations, analysis, rollout x2, evaluation
    return assets


def test_every_function_ships_the_same_asset_holding_only_the_runtime_package(code_assets):
    (folder,) = set(code_assets.values())  # one shared asset: its hash changes only when lambdas/ changes
    assert sorted(p.name for p in folder.iterdir()) == ["kanaria"]
    for handler in code_assets:
        module = handler.rsplit(".", 1)[0]
        assert (folder / (module.replace(".", "/") + ".py")).is_file(), handler


def test_the_asset_holds_no_tooling_and_no_moto_import(code_assets):
    (folder,) = set(code_assets.values())
    paths = [p for p in folder.rglob("*")]
    assert paths, "empty code asset"
    tooling = [str(p.relative_to(folder)) for p in paths if _TOOLING_NAMES & set(p.relative_to(folder).parts)]
    assert tooling == []
    moto_importers = [
        str(p.relative_to(folder))
        for p in paths
        if p.suffix == ".py" and _MOTO_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    assert moto_importers == []
    # the checks above would pass on an asset of the wrong folder: the runtime's own layers are there
    assert {"handlers", "logic", "domain", "dal"} <= {p.name for p in (folder / "kanaria").iterdir()}


def test_the_asset_holds_no_offline_model_adapter(code_assets):
    (folder,) = set(code_assets.values())
    assert not (folder / "kanaria" / "evaluation" / "fake_model.py").exists()
    assert (folder / "kanaria" / "evaluation" / "bedrock.py").is_file()  # the evaluation package itself is there
    defining = [
        str(p.relative_to(folder))
        for p in folder.rglob("*.py")
        if "class OfflineBedrockRuntime" in p.read_text(encoding="utf-8")
    ]
    assert defining == []


def test_the_moto_import_check_finds_one():
    assert _MOTO_IMPORT.search('"""x"""\nfrom moto import mock_aws\n')
    assert _MOTO_IMPORT.search("import moto.core\n")
    assert not _MOTO_IMPORT.search("# the emulator is moto; nothing imports it here\nimport motor\n")

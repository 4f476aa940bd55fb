"""The tooling finds the Kanaria checkout by its cdk.json (or KANARIA_REPO_ROOT), not by counting parent folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanaria.errors import OperationalError
from kanaria_tools import paths

CHECKOUT = Path(__file__).resolve().parents[3]


def test_the_checkout_is_found_from_the_installed_package(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.ENV_REPO_ROOT, raising=False)
    monkeypatch.chdir(tmp_path)  # not from the working directory: from where the package is installed
    assert paths.repository_root() == CHECKOUT
    assert (paths.repository_root() / "scenarios" / "default.json").is_file()


def test_an_explicit_root_wins_and_must_hold_cdk_json(monkeypatch, tmp_path):
    (tmp_path / "cdk.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv(paths.ENV_REPO_ROOT, str(tmp_path))
    assert paths.repository_root() == tmp_path.resolve()
    monkeypatch.setenv(paths.ENV_REPO_ROOT, str(tmp_path / "elsewhere"))
    with pytest.raises(OperationalError, match="KANARIA_REPO_ROOT=.*elsewhere has no cdk.json"):
        paths.repository_root()


def test_a_copy_outside_any_checkout_uses_the_working_directory_or_says_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.ENV_REPO_ROOT, raising=False)
    installed = tmp_path / "site-packages" / "kanaria_tools"
    installed.mkdir(parents=True)
    monkeypatch.setattr(paths, "__file__", str(installed / "paths.py"))
    checkout = tmp_path / "checkout"
    (checkout / "scenarios").mkdir(parents=True)
    (checkout / "cdk.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(checkout / "scenarios")
    assert paths.repository_root() == checkout.resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OperationalError, match="cannot find the Kanaria checkout .*KANARIA_REPO_ROOT"):
        paths.repository_root()

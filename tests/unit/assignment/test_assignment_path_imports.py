"""The assignment path (Lambda handler, embedded client, CLI) must not pull numpy or scipy in."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["kanaria.handlers.assign", "kanaria.client", "kanaria_tools.cli.main"])
def test_module_imports_no_numpy_or_scipy(module):
    env = {
        **os.environ,
        "EXPERIMENTS_TABLE": "t",
        "ASSIGNMENTS_TABLE": "t",
        "AGGREGATES_TABLE": "t",
        "PROFILES_PARAMETER": "/p",
    }
    script = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy'))))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout) == []

"""The recording path and the report command must not import numpy/scipy (only the analysis run does, lazily)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["kanaria.handlers.observations", "kanaria.handlers.analysis", "kanaria_tools.cli.report"]
)
def test_module_imports_no_numpy_or_scipy(module):
    script = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy'))))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []

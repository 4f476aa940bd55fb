"""Where the Kanaria checkout is: the folder holding `cdk.json` (the CDK app the rehearsal deploys, `scenarios/`).

The tooling is installed from the checkout (`pip install -e .` by `make install`), so the folder is found by
walking up from this file; a copy installed elsewhere finds it from the working directory instead, and
`KANARIA_REPO_ROOT` names it explicitly. Nothing here counts parent folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from kanaria.errors import OperationalError

ENV_REPO_ROOT = "KANARIA_REPO_ROOT"
MARKER = "cdk.json"


def _walk_up(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / MARKER).is_file():
            return folder
    return None


def repository_root() -> Path:
    """The Kanaria checkout: $KANARIA_REPO_ROOT if set, else the nearest folder above this package or the working
    directory that holds cdk.json. Raises OperationalError saying how to fix it when there is none."""
    explicit = os.environ.get(ENV_REPO_ROOT)
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not (root / MARKER).is_file():
            raise OperationalError(f"{ENV_REPO_ROOT}={explicit} has no {MARKER}: it must name the Kanaria checkout")
        return root
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        found = _walk_up(start)
        if found is not None:
            return found
    raise OperationalError(
        f"cannot find the Kanaria checkout (a folder with {MARKER}) above {Path(__file__).resolve().parent} or the "
        f"working directory {Path.cwd()}: run from the checkout or set {ENV_REPO_ROOT}"
    )

"""checkov, the third gate after cdk-nag and cfn-lint: every synthesized template is scanned, and the gate fails on
any failed check and on any skip without a specific reason. Skips live in each resource's Metadata
(`checkov: {skip: [{id, comment}]}`), written from the construct that decides them (infra.nag.checkov_skip).

checkov runs from its own virtualenv (.venv-checkov, `make install`; requirements-checkov.txt): its pins
(boto3/botocore 1.35, packaging 23, networkx 2.6) would downgrade what moto, cfn-lint and the CDK app run on.

    python -m infra.checkov_gate cdk.out      # exit 0 clean, 1 on findings; a summary by check either way
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
MIN_REASON = 20  # characters: "n/a" or "demo" is not a reason


@dataclass
class Scan:
    """checkov's results over a set of templates."""

    passed: int = 0
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @property
    def unexplained(self) -> list[dict]:
        """Skips whose comment is missing or too short to be a reason."""
        return [
            s for s in self.skipped if len((s.get("check_result") or {}).get("suppress_comment") or "") < MIN_REASON
        ]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unexplained

    def summary(self) -> str:
        def by_check(results: list[dict]) -> str:
            counts = Counter(r["check_id"] for r in results)
            return ", ".join(f"{check} x{n}" for check, n in sorted(counts.items())) or "none"

        lines = [
            f"checkov: {len(self.failed)} failed, {self.passed} passed, {len(self.skipped)} skipped with a "
            f"reason recorded in the resource's metadata ({by_check(self.skipped)})"
        ]
        for result in self.failed:
            lines.append(
                f"  FAILED {result['check_id']} {result['resource']} ({Path(result['file_path']).name}): "
                f"{result['check_name']}"
            )
        for result in self.unexplained:
            lines.append(f"  SKIPPED WITHOUT A REASON {result['check_id']} {result['resource']}")
        return "\n".join(lines)


def templates(assembly_dir: Path) -> list[Path]:
    """The CloudFormation templates of a cloud assembly (asset directories are not scanned)."""
    found = sorted(assembly_dir.glob("*.template.json"))
    if not found:
        raise FileNotFoundError(f"no *.template.json in {assembly_dir}: synthesize first")
    return found


def scan(assembly_dir: Path, checkov: Path = CHECKOV) -> Scan:
    """Run checkov (CloudFormation framework, no network: no Bridgecrew platform, no version check)."""
    if not checkov.is_file():
        raise FileNotFoundError(f"{checkov} not found: run `make install` (checkov has its own virtualenv)")
    command = [str(checkov), "--framework", "cloudformation", "--compact", "--output", "json", "--skip-download"]
    for template in templates(assembly_dir):
        command += ["--file", str(template)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
            "BC_SKIP_MAPPING": "TRUE",
            "LOG_LEVEL": "ERROR",
        },
    )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"checkov failed (exit {done.returncode}): {done.stderr[-2000:]}")
    reports = json.loads(done.stdout)
    result = Scan()
    for report in reports if isinstance(reports, list) else [reports]:
        if "results" not in report:  # a framework with nothing to scan answers with a bare summary
            continue
        result.passed += report["summary"]["passed"]
        result.failed += report["results"].get("failed_checks", [])
        result.skipped += report["results"].get("skipped_checks", [])
    return result


def main(argv: list[str]) -> int:
    assembly = Path(argv[0] if argv else "cdk.out")
    try:
        result = scan(assembly)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"checkov gate: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

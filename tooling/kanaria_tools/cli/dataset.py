"""`kanaria evaluate dataset import`: build a versioned golden dataset (and its manifest) from JSONL and CSV files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kanaria.errors import ValidationError


def register(evaluate_subparsers: argparse._SubParsersAction) -> None:
    """Add `dataset import` under `evaluate`."""
    dataset = evaluate_subparsers.add_parser("dataset", help="build golden datasets")
    commands = dataset.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    parser = commands.add_parser(
        "import",
        help="validate, deduplicate and sample JSONL/CSV cases into one dataset with a manifest",
        description="Every row is validated first: any bad row exits 2 naming its file, line and field, and "
        "nothing is written. Duplicates (same intent, normalised query, history and page context) are dropped, "
        "the first kept. --per-stratum samples at most N cases per (intent, language). Writes FILE.jsonl and "
        "FILE.manifest.json (counts, hashes, dropped cases, intents below the target size).",
    )
    parser.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="JSONL or CSV file (by extension)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl", help="dataset to write")
    parser.add_argument("--manifest", type=Path, metavar="FILE.json", help="default: <out>.manifest.json beside it")
    parser.add_argument("--per-stratum", type=int, metavar="N", help="at most N cases per (intent, language)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument(
        "--target-per-intent",
        type=int,
        metavar="N",
        help="size every intent is checked against in the manifest (default 200, the evaluation design's size)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing dataset file")
    parser.add_argument(
        "--bucket", help="also upload both to this evaluation bucket (datasets/<name>.jsonl, a new object version)"
    )
    parser.set_defaults(func=run_import)


def _sources(paths: list[Path]) -> list[Any]:
    from kanaria_tools.golden_import import Source

    sources = []
    for path in paths:
        if path.suffix.lower() not in {".jsonl", ".csv"}:
            raise ValidationError(f"{path}: a source is a .jsonl or .csv file", field="sources")
        try:
            sources.append(Source(name=str(path), text=path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ValidationError(f"file not found: {path}", field="sources") from None
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{path} is not UTF-8 (byte {exc.start})", field="sources") from None
    return sources


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a reader never sees half a dataset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def run_import(args: argparse.Namespace) -> int:
    """Build the dataset, write it and its manifest, print the counts."""
    from kanaria.errors import validate
    from kanaria.evaluation.dataset import dataset_name
    from kanaria_tools.golden_import import ImportOptions, build

    if args.out.suffix != ".jsonl":
        raise ValidationError(f"{args.out}: the dataset file must end in .jsonl", field="--out")
    if args.out.exists() and not args.force:
        raise ValidationError(f"{args.out} exists: a dataset version is its content, give --force", field="--out")
    fields = {"per_stratum": args.per_stratum, "seed": args.seed}
    if args.target_per_intent is not None:
        fields["target_per_intent"] = args.target_per_intent
    options = validate(ImportOptions, fields, prefix="options")
    built = build(_sources(args.sources), dataset_name(args.out.name), options)
    manifest_path = args.manifest or args.out.with_name(args.out.name.removesuffix(".jsonl") + ".manifest.json")
    _write(args.out, built.text)
    manifest_json = built.manifest.model_dump_json(indent=2) + "\n"
    _write(manifest_path, manifest_json)
    _print_summary(built.manifest, args.out, manifest_path)
    if args.bucket:
        from kanaria.dal.evaluations import EvaluationBucket

        bucket = EvaluationBucket(args.bucket)
        dataset_uri = bucket.put_dataset(built.manifest.name, built.text)
        manifest_uri = bucket.put_dataset_manifest(built.manifest.name, manifest_json)
        sys.stdout.write(f"uploaded: {dataset_uri}\n          {manifest_uri}\n")
    return 0


def _print_summary(manifest: Any, out: Path, manifest_path: Path) -> None:
    write = sys.stdout.write
    write(f"{manifest.version}: {manifest.cases} cases from {manifest.rows_read} rows ")
    write(f"({len(manifest.duplicates)} duplicates dropped, {manifest.sampled_out} sampled out)\n\n")
    write("| intent/language | cases |\n|---|---:|\n")
    for name, count in manifest.per_stratum.items():
        write(f"| {name} | {count} |\n")
    if manifest.below_target:
        short = ", ".join(f"{i} {n}" for i, n in manifest.below_target.items())
        write(f"\nbelow {manifest.options.target_per_intent} cases per intent: {short}\n")
    write(f"\ndataset: {out}\nmanifest: {manifest_path}\n")

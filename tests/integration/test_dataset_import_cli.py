"""`kanaria evaluate dataset import`: the dataset and manifest written (and evaluable), bad rows and options exit 2
naming the field with nothing written, an existing dataset replaced only with --force."""

from __future__ import annotations

import json

from kanaria_tools.cli.main import main
from tests.unit.evaluation.support import EXAMPLES, ROOT, SAMPLE_DATASET

ENGLISH = ROOT / "datasets" / "golden" / "sources" / "manga_store_en.csv"


def _error(capsys) -> dict:
    return json.loads(capsys.readouterr().err)["error"]


def test_import_writes_the_dataset_and_its_manifest_and_evaluate_reads_it(tmp_path, capsys):
    out = tmp_path / "golden" / "store_v3.jsonl"
    code = main(["evaluate", "dataset", "import", str(SAMPLE_DATASET), str(ENGLISH), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    manifest = json.loads((tmp_path / "golden" / "store_v3.manifest.json").read_text())
    assert printed.startswith(f"{manifest['version']}: 78 cases from 78 rows")
    assert "| recommendation/en | 3 |" in printed and "below 200 cases per intent" in printed
    assert manifest["per_language"] == {"en": 18, "ja": 60} and manifest["below_target"]["chitchat"] == 13
    code = main(
        ["evaluate", "--dataset", str(out), "--config", str(EXAMPLES / "haiku.json"), "--intent", "chitchat"]
        + ["--out", str(tmp_path / "report")]
    )
    assert code == 0 and f"on {manifest['version']} (13 cases" in capsys.readouterr().out


def test_sampling_options_reach_the_manifest(tmp_path, capsys):
    out = tmp_path / "small.jsonl"
    argv = ["evaluate", "dataset", "import", str(SAMPLE_DATASET), str(ENGLISH), "--out", str(out)]
    assert main([*argv, "--per-stratum", "2", "--seed", "3", "--target-per-intent", "4"]) == 0
    manifest = json.loads((tmp_path / "small.manifest.json").read_text())
    assert set(manifest["per_stratum"].values()) == {2} and manifest["cases"] == 24
    assert (
        manifest["options"] == {"per_stratum": 2, "seed": 3, "target_per_intent": 4} and manifest["below_target"] == {}
    )
    capsys.readouterr()
    assert main([*argv, "--per-stratum", "2", "--seed", "3"]) == 2  # exists
    assert _error(capsys)["field"] == "--out"
    assert main([*argv, "--per-stratum", "3", "--force"]) == 0
    assert json.loads((tmp_path / "small.manifest.json").read_text())["cases"] == 36


def test_a_bad_row_exits_2_naming_file_line_and_field_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,intent,query,reference_answer\nok-1,chitchat,Hi,Hello!\nbad-1,chitchat,,Hello!\n")
    out = tmp_path / "out" / "x.jsonl"
    assert main(["evaluate", "dataset", "import", str(SAMPLE_DATASET), str(bad), "--out", str(out)]) == 2
    error = _error(capsys)
    assert error["field"] == f"{bad}:3.query" and error["details"][0]["field"] == f"{bad}:3.query"
    assert not (tmp_path / "out").exists()


def test_bad_options_and_files_exit_2(tmp_path, capsys):
    base = ["evaluate", "dataset", "import", str(SAMPLE_DATASET)]
    for argv, field in (
        ([*base, "--out", str(tmp_path / "a.jsonl"), "--per-stratum", "0"], "options.per_stratum"),
        ([*base, "--out", str(tmp_path / "a.json")], "--out"),
        ([*base, str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "a.jsonl")], "sources"),
        ([*base, str(EXAMPLES / "haiku.json"), "--out", str(tmp_path / "a.jsonl")], "sources"),
    ):
        assert main(argv) == 2, argv
        assert _error(capsys)["field"] == field
    assert list(tmp_path.iterdir()) == []


def test_evaluate_without_a_dataset_or_a_configuration_names_the_flag(capsys):
    assert main(["evaluate", "--config", str(EXAMPLES / "haiku.json")]) == 2
    assert _error(capsys)["field"] == "--dataset"
    assert main(["evaluate", "--dataset", str(SAMPLE_DATASET)]) == 2
    assert _error(capsys)["field"] == "--config"


def test_import_uploads_the_dataset_and_manifest_to_the_evaluation_bucket(tmp_path, capsys):
    import boto3
    from moto import mock_aws

    from kanaria.dal.evaluations import EvaluationBucket, parse_s3_uri

    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="evals", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        s3.put_bucket_versioning(Bucket="evals", VersioningConfiguration={"Status": "Enabled"})
        out = tmp_path / "store_v3.jsonl"
        argv = ["evaluate", "dataset", "import", str(SAMPLE_DATASET), str(ENGLISH), "--out", str(out)]
        assert main([*argv, "--bucket", "evals"]) == 0
        uploaded = [line.split()[-1] for line in capsys.readouterr().out.splitlines() if "s3://" in line]
        bucket = EvaluationBucket("evals", s3)
        text, version = bucket.read_text("datasets/store_v3.jsonl")
        assert text == out.read_text() and uploaded[0].endswith(f"?versionId={version}")
        manifest, _ = bucket.read_text("datasets/store_v3.manifest.json")
        assert json.loads(manifest)["sha256"] == json.loads((tmp_path / "store_v3.manifest.json").read_text())["sha256"]
        assert parse_s3_uri(uploaded[1])[1] == "datasets/store_v3.manifest.json"

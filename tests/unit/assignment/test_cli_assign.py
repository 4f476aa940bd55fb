"""`kanaria assign` prints the same answers as the embedded client; bad input exits 2 naming the field."""

from __future__ import annotations

import json

from kanaria.client import EmbeddedClient
from kanaria_tools.cli.main import main
from tests.unit.assignment.conftest import definition


def _write(tmp_path, document) -> str:
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_single_unit_prints_the_documented_json(tmp_path, capsys):
    path = _write(tmp_path, definition())
    assert main(["assign", "--experiment", path, "--unit", "sess-7", "--intent", "recommendation"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = EmbeddedClient([definition()]).assign("exp-temp", "sess-7", "recommendation")
    assert set(printed) == {"experiment_id", "unit", "variant", "in_experiment", "config", "config_hash"}
    assert (printed["variant"], printed["config_hash"], printed["config"]) == (
        expected.variant,
        expected.config_hash,
        expected.config,
    )


def test_units_file_prints_one_line_per_unit(tmp_path, capsys):
    path = _write(tmp_path, definition())
    units = tmp_path / "units.txt"
    units.write_text("\n".join(f"u{i}" for i in range(300)) + "\n\n")
    assert main(["assign", "--experiment", path, "--units", str(units), "--intent", "recommendation"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["unit"] for line in lines] == [f"u{i}" for i in range(300)]
    client = EmbeddedClient([definition()])
    assert all(line["variant"] == client.assign("exp-temp", line["unit"], "recommendation").variant for line in lines)


def test_bad_definition_exits_2_naming_the_field(tmp_path, capsys):
    path = _write(tmp_path, definition(variants=[{"id": "A", "weight": 0.7}, {"id": "B", "weight": 0.7}]))
    assert main(["assign", "--experiment", path, "--unit", "u1"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.err)["error"]
    assert error["field"] == "variants" and "sum to 1" in error["reason"] and captured.out == ""


def test_missing_and_malformed_files_exit_2(tmp_path, capsys):
    assert main(["assign", "--experiment", str(tmp_path / "nope.json"), "--unit", "u1"]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["field"] == "--experiment"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["assign", "--experiment", str(broken), "--unit", "u1"]) == 2
    assert "not valid JSON" in json.loads(capsys.readouterr().err)["error"]["reason"]
    path = _write(tmp_path, definition())
    assert main(["assign", "--experiment", path, "--units", str(tmp_path / "none.txt")]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["field"] == "--units"

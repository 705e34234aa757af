"""The files one deployable writes and another reads (``sf_contract.files``)."""

import datetime as dt
import json
from pathlib import PurePath

import pytest

from sf_contract.files import (
    CONTRACT_FILE,
    GATE_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    METRICS_FILE,
    REGISTRY_FILE,
    FileFormatError,
    dumps,
    empty_registry,
    parse_gate,
    parse_json,
    parse_manifest,
    parse_metadata,
    parse_registry,
    registry_index_path,
)

SHA = "ab" * 32


def test_file_names():
    assert (CONTRACT_FILE, METRICS_FILE, METADATA_FILE) == (
        "contract.json",
        "metrics.json",
        "metadata.json",
    )
    assert (GATE_FILE, REGISTRY_FILE, MANIFEST_FILE) == (
        "gate.json",
        "registry.json",
        "manifest.json",
    )


def test_dumps_is_sorted_indented_and_writes_dates_as_text():
    text = dumps({"b": 1, "a": {"d": dt.date(2024, 1, 31), "c": [1, 2]}})
    assert text == (
        '{\n  "a": {\n    "c": [\n      1,\n      2\n    ],\n    "d": "2024-01-31"\n  },\n'
        '  "b": 1\n}'
    )
    assert json.loads(text)["a"]["d"] == "2024-01-31"


@pytest.mark.parametrize("text", ["{", "", b"\xff\xfe", "nan nan"])
def test_parse_json_errors_name_the_file(text):
    with pytest.raises(FileFormatError, match=r"^run/gate\.json is not valid JSON \("):
        parse_json(text, "run/gate.json")


def test_parse_json_reads_bytes():
    assert parse_json(b'{"a": 1}', "x") == {"a": 1}


GATE = {"passed": True, "metric": "wape", "reason": "beats the baseline", "challenger": 0.2}


def test_parse_gate():
    gate = parse_gate(dumps({**GATE, "beats_baseline": True}))
    assert gate == {**GATE, "beats_baseline": True}
    assert parse_gate(json.dumps({**GATE, "passed": False}).encode())["passed"] is False


@pytest.mark.parametrize(
    ("challenger", "baseline", "beats"), [(0.2, 0.3, True), (0.3, 0.3, False), (None, 0.3, False)]
)
def test_a_gate_written_before_beats_baseline_existed_gets_it(challenger, baseline, beats):
    old = {"passed": False, "metric": "wape", "reason": "r", "challenger": challenger,
           "baseline": baseline}  # fmt: skip
    assert parse_gate(json.dumps(old))["beats_baseline"] is beats


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([GATE], "must hold a JSON object, not list"),
        ("passed", "must hold a JSON object, not str"),
        ({"metric": "wape", "reason": "r"}, "lacks passed"),
        ({"passed": True}, "lacks metric, reason"),
        ({**GATE, "passed": "yes"}, "passed must be true or false"),
        ({**GATE, "passed": 1}, "passed must be true or false"),
    ],
)
def test_parse_gate_errors(doc, message):
    with pytest.raises(FileFormatError, match=f"^b/gate.json(:| ).*{message}"):
        parse_gate(json.dumps(doc), "b/gate.json")


def test_parse_metadata_needs_train_end():
    meta = parse_metadata(dumps({"train_end": "2024-03-31", "horizon": 14}))
    assert meta["train_end"] == "2024-03-31"
    with pytest.raises(FileFormatError, match="^metadata.json lacks train_end"):
        parse_metadata("{}")


@pytest.mark.parametrize(
    "files",
    [{"model.bin": SHA}, {}, {"a/b.json": SHA, "c": "0" * 64}],
)
def test_parse_manifest(files):
    assert parse_manifest(dumps({"files": files, "run_id": "r"}))["files"] == files


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "lacks files"),
        ({"files": [SHA]}, "is not"),
        ({"files": {"model.bin": "abc"}}, "is not"),
        ({"files": {"model.bin": 1}}, "is not"),
    ],
)
def test_parse_manifest_errors(doc, message):
    with pytest.raises(FileFormatError, match=f"^manifest.json {message}"):
        parse_manifest(json.dumps(doc))


ENTRY = {"version": "1", "uri": "/models/m/1", "run_id": "r1", "files": {"model.bin": SHA}}


def test_parse_registry_fills_the_optional_parts():
    index = parse_registry(json.dumps({"versions": [ENTRY], "aliases": {"production": "1"}}))
    assert index == {
        "versions": [ENTRY],
        "aliases": {"production": "1"},
        "model": "",
        "events": [],
    }


def test_an_empty_registry_round_trips():
    assert parse_registry(dumps(empty_registry("sales"))) == empty_registry("sales")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"versions": []}, "lacks aliases"),
        ({"aliases": {}}, "lacks versions"),
        ({"versions": {}, "aliases": {}}, "versions must be a list and aliases an object"),
        ({"versions": [], "aliases": []}, "versions must be a list and aliases an object"),
        ({"versions": [ENTRY, "1"], "aliases": {}}, r"versions\[1\] lacks version, uri or run_id"),
        ({"versions": [{"version": "1", "uri": "u"}], "aliases": {}}, r"versions\[0\] lacks"),
    ],
)
def test_parse_registry_errors(doc, message):
    with pytest.raises(FileFormatError, match=message):
        parse_registry(json.dumps(doc))


def test_registry_index_path():
    assert registry_index_path("/data/models", "sales") == PurePath(
        "/data/models/sales/registry.json"
    )
    assert registry_index_path(PurePath("m"), "x").name == REGISTRY_FILE


def test_file_format_error_is_a_value_error():
    assert issubclass(FileFormatError, ValueError)

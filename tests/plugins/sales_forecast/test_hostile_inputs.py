"""Hostile contracts and params never reach SQL and never make the worker read a file.

The cases of the reliability review (D1, D4, D7, section 3), each at its entry point:
``parse_contract`` (and the trainer's ``load_contract``) for contract content, the Airflow
side's ``load_contract`` for the ``dataset`` param and ``make_run_context`` for ``input_uri`` /
``future_uri``. Wherever a param could point at a file, opening any file fails the test: the
refusal must come from the name alone.
"""

import builtins
import io
import json
import os
import pathlib
from datetime import UTC, datetime

import pytest
from sales_forecast.config import Settings
from sales_forecast.contract import load_contract
from sales_forecast.errors import DataError
from sales_forecast.run_context import make_run_context

from sf_contract.scalars import ScalarError, series_id
from sf_contract.schema import ContractError, parse_contract

HOSTILE_NAMES = [
    'x"; DROP TABLE sales_forecast.sales_history; --',
    "x'); DROP TABLE sales_forecast.sales_history; --",
    "sp ace;semi'quote",
    "../../../..escaped",
    "`sales_forecast.sales_history`",
    "a`b",
    "x\n",
    "x\nDROP TABLE t",
    "retail\x00",
    "stör",
    "商品🍣",
    "x" * 129,
    "",
    "1abc",
    "a.b",
    "a-b",
    "$x",
    "x\\",
]


def contract(name="mine", **extra_columns):
    columns = [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "store_id", "type": "STRING", "role": "key"},
        {"name": "sales", "type": "FLOAT64", "role": "target"},
        *extra_columns.values(),
    ]
    return {
        "name": name,
        "date_column": "date",
        "target": "sales",
        "series_keys": ["store_id"],
        "columns": columns,
    }


def _refuse_opening(monkeypatch):
    """Opening any file (Python, pathlib, fsspec) fails the test from here on."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a file was opened: {args[:1]}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(pathlib.Path, "open", refuse)
    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse)
    monkeypatch.setattr(pathlib.Path, "read_text", refuse)
    import fsspec

    monkeypatch.setattr(fsspec, "open", refuse)


@pytest.fixture
def no_file_is_opened(monkeypatch):
    _refuse_opening(monkeypatch)


# ------------------------------------------------------------------------ contract names (D1)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_parse_contract_refuses_hostile_names(name):
    with pytest.raises(ContractError, match=r"^evil\.json: (contract name|name must be)") as err:
        parse_contract(contract(name), source="evil.json")
    assert "\n" not in str(err.value)  # a newline in the name is shown escaped


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("field", ["date_column", "target", "series_keys", "column"])
def test_every_other_identifier_follows_the_same_rule(name, field):
    data = contract()
    if field == "series_keys":
        data["series_keys"] = [name]
    elif field == "column":
        data["columns"].append({"name": name, "type": "STRING", "role": "static"})
    else:
        data[field] = name
    with pytest.raises(ContractError, match=r"^evil\.json: .*not a valid"):
        parse_contract(data, source="evil.json")


@pytest.mark.parametrize("name", HOSTILE_NAMES[:6])
def test_a_hostile_contract_in_the_contracts_folder_is_refused(tmp_path, name):
    (tmp_path / "evil.json").write_text(json.dumps(contract(name)))
    with pytest.raises(ContractError, match="contract name"):
        load_contract("evil", Settings(contracts_dir=tmp_path))


@pytest.mark.parametrize("name", HOSTILE_NAMES[:6])
def test_the_trainer_applies_the_same_rules(tmp_path, name):
    from trainer.contract import load_contract as trainer_load_contract
    from trainer.errors import TrainerError

    path = tmp_path / "contract.json"
    path.write_text(json.dumps(contract(name)))
    with pytest.raises(TrainerError, match="contract name .* is not a valid name"):
        trainer_load_contract(str(path))


# --------------------------------------------------------------- future_fill constants (D1)


@pytest.mark.parametrize(
    ("ctype", "rule", "message"),
    [
        # The review's second attack: a trailing backslash, then SQL in the next constant.
        ("FLOAT64", "value:\\", "is not a FLOAT64 value"),
        ("BOOL", "value:') ; DROP TABLE sales_forecast.sales_history; --", "not a BOOL value"),
        ("INT64", "value:1; DROP TABLE t", "not a INT64 value"),
        ("DATE", "value:2024-01-01'); DROP TABLE t; --", "not a DATE value"),
        ("STRING", "value:x\n'); DROP TABLE t; --", "control character '\\\\n'"),
        ("STRING", "value:x\x00", "control character '\\\\x00'"),
        ("STRING", "value:\x1b]0;pwned\x07", "control character '\\\\x1b'"),
        ("STRING", "value:" + "'; DROP TABLE t; --" * 20, "at most 200 are allowed"),
    ],
)
def test_hostile_fill_constants_are_refused(ctype, rule, message):
    column = {"name": "extra", "type": ctype, "role": "known", "future_fill": rule}
    with pytest.raises(ContractError, match=message) as err:
        parse_contract(contract(extra=column), source="evil.json")
    assert str(err.value).startswith("evil.json: column 'extra'")
    assert len(str(err.value)) < 400


# ------------------------------------------------------------------------ series ids (D4)


@pytest.mark.parametrize("parts", [("S01", "I001|Z"), ("S01|I001", "Z"), ("|",)])
def test_a_key_holding_the_separator_gets_no_series_id(parts):
    with pytest.raises(ScalarError, match="contains '|'"):
        series_id(parts)


# -------------------------------------------------------------------- dataset param (D7)


HOSTILE_DATASETS = [
    "../../etc/passwd",
    "/etc/passwd",
    "retail.yaml",
    "contracts/retail",
    "./retail",
    "~/mine.yaml",
    "..",
    "retail/../../../../etc/passwd",
    "file:///etc/passwd",
    "http://127.0.0.1:9/contract.yaml",
    "retail\n",
    "",
    "a" * 500,
]


@pytest.mark.parametrize("dataset", HOSTILE_DATASETS)
def test_load_contract_refuses_paths_without_reading_anything(tmp_path, no_file_is_opened, dataset):
    cfg = Settings(contracts_dir=tmp_path)
    with pytest.raises(ContractError, match="available: retail, takeaway") as err:
        load_contract(dataset, cfg)
    assert "not a path" in str(err.value)
    assert len(str(err.value)) < 600


@pytest.mark.parametrize("dataset", HOSTILE_DATASETS)
def test_a_hostile_dataset_fails_the_run_context(settings, tmp_path, no_file_is_opened, dataset):
    if dataset.strip() in ("", "retail"):
        return  # empty means the default contract; params are trimmed
    with pytest.raises(DataError, match="available: retail, takeaway"):
        run_context(settings, tmp_path, dataset=dataset)


# ---------------------------------------------------------------- input_uri / future_uri (D7)


def run_context(settings, tmp_path, **params):
    params.setdefault("input_uri", str(settings.data_root / "sales.csv"))
    return make_run_context(
        run_id="manual__hostile",
        logical_date=datetime(2025, 7, 1, tzinfo=UTC),
        params=params,
        settings=settings,
        runs_root=str(tmp_path / "runs"),
    )


@pytest.fixture
def outside(tmp_path, settings):
    """A readable secret outside every allowed root, and a data root holding a symlink to it."""
    secret = tmp_path / "secret.csv"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    settings.data_root.mkdir(parents=True)
    (settings.data_root / "link.csv").symlink_to(secret)
    (settings.data_root / "folder").mkdir()
    return secret


HOSTILE_URIS = [
    ("http://127.0.0.1:9/x", "uses the 'http' scheme"),
    ("http://169.254.169.254/computeMetadata/v1/instance/token", "uses the 'http' scheme"),
    ("https://127.0.0.1:9/x.csv", "uses the 'https' scheme"),
    ("s3://bucket/x.csv", "uses the 's3' scheme"),
    ("ftp://127.0.0.1/x.csv", "uses the 'ftp' scheme"),
    ("memory://x.csv", "uses the 'memory' scheme"),
    ("blockcache::file:///etc/passwd", "uses the 'blockcache' scheme"),
    ("/etc/passwd", "outside the allowed folders"),
    ("file:///etc/passwd", "outside the allowed folders"),
    ("file://localhost/etc/passwd", "outside the allowed folders"),
    ("/proc/self/environ", "outside the allowed folders"),
    ("{secret}", "outside the allowed folders"),
    ("{root}/link.csv", "outside the allowed folders"),
    ("{root}/../secret.csv", "outside the allowed folders"),
    ("{root}/folder/../../secret.csv", "outside the allowed folders"),
    ("{root}/*.csv", "contains a wildcard"),
    ("{root}/x.csv::memory://y", "contains '::'"),
    ("{root}/x\n.csv", "contains a control character"),
]


# A folder is an input_uri (of Parquet files: test_sources.py), never a future file.
FOLDER_URIS = [
    ("{root}/folder", "is a folder, not a CSV file"),
    ("{root}/folder/", "is a folder, not a CSV file"),
]


@pytest.mark.parametrize(
    ("param", "uri", "message"),
    [
        *((p, u, m) for p in ("input_uri", "future_uri") for u, m in HOSTILE_URIS),
        *(("future_uri", u, m) for u, m in FOLDER_URIS),
        ("input_uri", "bq://my-project.sales.daily", "BigQuery tables are read on the GCP"),
        ("future_uri", "bq://my-project.sales.daily", "BigQuery tables are read as input_uri"),
    ],
)
def test_hostile_input_uris_are_refused_before_anything_is_read(
    settings, tmp_path, outside, param, uri, message, monkeypatch
):
    uri = uri.format(secret=outside, root=settings.data_root)
    # Installed here, not as a fixture: the `outside` fixture writes its files first.
    _refuse_opening(monkeypatch)
    with pytest.raises(DataError, match=message) as err:
        run_context(settings, tmp_path, **{param: uri})
    text = str(err.value)
    assert text.startswith(f"param {param}=")
    assert "root:x:0:0" not in text  # nothing of the file is quoted
    if "folder, not" not in message and "BigQuery" not in message:
        assert str(settings.data_root) in text  # names the allowed folders

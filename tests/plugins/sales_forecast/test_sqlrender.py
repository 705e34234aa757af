"""Rendering the SQL templates: table names, shared tokens, literals, the DuckDB transpile."""

import dataclasses
import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest
from sales_forecast.contract import BUILTIN_CONTRACTS, load_contract
from sales_forecast.sqlrender import (
    SQL_DIR,
    TableNames,
    fill_literal,
    regex_literal,
    render_sql,
    string_literal,
    to_duckdb,
)

from sf_contract.constants import BOOL_FALSE, BOOL_TRUE, DATE_PATTERN, FLOAT_PATTERN, INT_PATTERN
from sf_contract.schema import Column, parse_contract
from tests._support.sql_inputs import script_inputs

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
SCRIPTS = sorted(p.stem for p in SQL_DIR.glob("*.sql") if not p.name.startswith("_"))
TABLES = [f.name for f in dataclasses.fields(TableNames) if f.name not in ("prefix", "run_id")]


def duck_value(expression: str):
    """What DuckDB makes of a BigQuery expression, through the same transpile as the scripts."""
    (statement,) = to_duckdb(f"SELECT {expression} AS v")
    return duckdb.connect().execute(statement).fetchone()[0]


# --------------------------------------------------------------------------- TableNames


def test_table_names_are_qualified_and_quoted():
    tables = TableNames("proj.ds")
    assert tables.prefix == "proj.ds"
    assert tables.sales_history == "`proj.ds.sales_history`"
    assert TableNames("sf").staging == "`sf.staging`"
    assert [getattr(tables, t) for t in TABLES] == [f"`proj.ds.{t}`" for t in TABLES]
    assert TableNames("sf") == TableNames("sf") != TableNames("other")


def test_a_misspelt_table_is_an_error_not_a_table():
    tables = TableNames("sf")
    with pytest.raises(AttributeError):
        tables.sales_histroy  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        tables.staging = "`elsewhere`"  # type: ignore[misc]
    with pytest.raises(TypeError):
        TableNames("sf", staging="`x`")  # type: ignore[call-arg]


def test_every_table_the_code_names_is_a_field():
    """Each ``t.<name>`` in the SQL, ``tables.<name>`` in the plugins and ``table_uri("<name>")``
    / ``table_id("<name>")`` names a TableNames field, and each field is used somewhere."""
    used: set[str] = set()
    for path in SQL_DIR.glob("*.sql"):
        used |= set(re.findall(r"\bt\.(\w+)", path.read_text()))
    for path in PLUGINS.rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r"\btables\.(\w+)", text))
        used |= set(re.findall(r"\bt\.(\w+) *}", text))  # `t = run.tables` in f-strings
        used |= set(re.findall(r"table_(?:uri|id)\(['\"](\w+)['\"]\)", text))
    used -= {"prefix", "run_id", "name"}
    assert used - set(TABLES) == set()
    assert set(TABLES) - used == set()


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    "text",
    ["", "plain", "it's", "back\\slash", "\\'", "x\\", "a\\nb", "two\nlines", "cr\rlf", "|", "ü €"],
)
def test_string_literals_survive_the_transpile(text):
    literal = string_literal(text)
    assert literal.startswith("'") and literal.endswith("'")
    assert duck_value(literal) == text


def test_regex_literal_is_raw():
    assert regex_literal(DATE_PATTERN) == r"r'^\d{4}-\d{2}-\d{2}$'"
    assert duck_value(f"REGEXP_CONTAINS('2024-01-31', {regex_literal(DATE_PATTERN)})") is True
    assert duck_value(f"REGEXP_CONTAINS('20240131', {regex_literal(DATE_PATTERN)})") is False
    with pytest.raises(ValueError, match="raw string literal"):
        regex_literal("it's")


@pytest.mark.parametrize(
    ("ctype", "rule", "literal", "value"),
    [
        ("FLOAT64", "zero", "0.0", 0.0),
        ("INT64", "zero", "0", 0),
        ("BOOL", "zero", "FALSE", False),
        ("BOOL", "false", "FALSE", False),
        ("BOOL", "value:yes", "TRUE", True),  # SAFE_CAST('yes' AS BOOL) is NULL on BigQuery
        ("BOOL", "value:0", "FALSE", False),
        ("FLOAT64", "value:1.5", "1.5", 1.5),
        ("FLOAT64", "value:-2e-05", "-2e-05", -2e-05),
        ("INT64", "value:+12", "12", 12),
        ("STRING", "value:", "''", ""),
        ("STRING", "value:O'Brien", "'O\\'Brien'", "O'Brien"),  # the old SQL dropped the quote
        ("DATE", "value:2024-02-29", "DATE '2024-02-29'", dt.date(2024, 2, 29)),
    ],
)
def test_fill_literal_is_the_contracts_typed_constant(ctype, rule, literal, value):
    col = Column("x", ctype, "known", future_fill=rule)
    assert fill_literal(col) == literal
    got = duck_value(fill_literal(col))
    assert got == value == col.fill_value()


@pytest.mark.parametrize("rule", ["last", "weekend", None])
def test_rules_without_a_constant_have_no_literal(rule):
    with pytest.raises(ValueError, match="has no constant"):
        fill_literal(Column("x", "BOOL", "known", future_fill=rule))


# --------------------------------------------------------------------------- render_sql


@pytest.mark.parametrize("dataset", BUILTIN_CONTRACTS)
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_renders_and_transpiles_for_every_builtin_contract(dataset, script):
    contract = load_contract(dataset)
    for inputs in script_inputs(script, contract):
        sql = render_sql(script, contract, TableNames("proj.ds"), inputs)
        assert "{{" not in sql and "{%" not in sql
        assert "`proj.ds." in sql
        statements = to_duckdb(sql)
        assert statements and all(s.strip() for s in statements)
        assert all("`" not in s for s in statements)  # DuckDB quotes with double quotes


def test_validate_uses_the_shared_boolean_and_date_tokens():
    sql = render_sql("validate", load_contract("retail"), TableNames("sf"))
    true_list = ", ".join(f"'{t}'" for t in BOOL_TRUE)
    false_list = ", ".join(f"'{t}'" for t in BOOL_FALSE)
    assert f"LOWER(TRIM(`on_promo`)) IN ({true_list}) THEN TRUE" in sql
    assert f"LOWER(TRIM(`on_promo`)) IN ({false_list}) THEN FALSE" in sql
    assert f"REGEXP_CONTAINS(TRIM(`date`), r'{DATE_PATTERN}')" in sql
    assert f"NOT REGEXP_CONTAINS(TRIM(`price`), r'{FLOAT_PATTERN}')" in sql


# Header names a contract may give its columns: free text, some of it SQL.
HOSTILE_HEADERS = {
    "date": "Date`; DROP TABLE x; --",
    "store_id": "Store') OR 1=1 --",
    "sales": 'Units "Sold" \\ {{ 7*7 }}',
    "on_promo": "Promo {% raw %}",
}


def test_a_columns_csv_header_never_reaches_the_sql():
    """The loaders map headers to names; no template may write a header into SQL."""
    data = load_contract("retail").to_dict()
    for col in data["columns"]:
        if col["name"] in HOSTILE_HEADERS:
            col["header"] = HOSTILE_HEADERS[col["name"]]
    contract = parse_contract(data)
    assert contract.column("sales").header == HOSTILE_HEADERS["sales"]
    for script in SCRIPTS:
        # The local loader's rendering: a typed source renamed by position, never by header.
        inputs = script_inputs(script, contract)[0]
        sql = render_sql(script, contract, TableNames("sf", "run1"), inputs)
        for header in HOSTILE_HEADERS.values():
            assert header not in sql, script
        assert "DROP TABLE x" not in sql and "OR 1=1" not in sql and "Sold" not in sql
        # Rendered exactly as without headers: the SQL only ever sees names.
        plain = render_sql(script, load_contract("retail"), TableNames("sf", "run1"), inputs)
        assert sql == plain, script


def test_validate_types_dates_by_the_contracts_format():
    data = load_contract("retail").to_dict()
    contract = parse_contract({**data, "date_format": "%d/%m/%Y"})
    sql = render_sql("validate", contract, TableNames("sf"))
    # Not PARSE_DATE: sqlglot writes it as a DuckDB STRPTIME that does not parse.
    assert "PARSE_DATE" not in sql and DATE_PATTERN not in sql
    assert "REGEXP_CONTAINS(TRIM(`date`), r'^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$')" in sql
    assert (
        "LPAD(REGEXP_EXTRACT(TRIM(`date`), r'^([0-9]{1,2})/[0-9]{1,2}/[0-9]{4}$'), 2, '0')" in sql
    )
    assert "' (expected %d/%m/%Y)'" in sql
    assert to_duckdb(sql)
    iso = render_sql("validate", load_contract("retail"), TableNames("sf"))
    assert "' (expected YYYY-MM-DD)'" in iso


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        (None, "2025-02-01", dt.date(2025, 2, 1)),
        (None, "0000-01-01", None),  # DuckDB alone would read 1 BC
        (None, "01/02/2025", None),
        ("%d/%m/%Y", "01/02/2025", dt.date(2025, 2, 1)),
        ("%d/%m/%Y", "1/2/2025", dt.date(2025, 2, 1)),
        ("%d/%m/%Y", "31/02/2025", None),
        ("%d/%m/%Y", "2025-10-31", None),
        ("%d/%m/%Y", "01/02/0000", None),
        ("%Y%m%d", "20251031", dt.date(2025, 10, 31)),
        ("%m/%d/%Y", "10/31/2025", dt.date(2025, 10, 31)),
    ],
)
def test_the_date_macro_on_duckdb(tmp_path, monkeypatch, fmt, text, expected):
    from sales_forecast import sqlrender

    (tmp_path / "_macros.sql").write_text((SQL_DIR / "_macros.sql").read_text())
    (tmp_path / "probe.sql").write_text(
        '{% import "_macros.sql" as m %}SELECT {{ m.date_value(text | lit, fmt) }} AS v'
    )
    monkeypatch.setattr(sqlrender, "SQL_DIR", tmp_path)
    sql = render_sql("probe", load_contract("retail"), TableNames("sf"), {"text": text, "fmt": fmt})
    (statement,) = to_duckdb(sql)
    assert duckdb.connect().execute(statement).fetchone()[0] == expected


def test_validate_types_integers_by_the_shared_pattern():
    contract = parse_contract(
        {
            "name": "x",
            "date_column": "day",
            "target": "units",
            "columns": [{"name": "day", "type": "DATE"}, {"name": "units", "type": "INT64"}],
        }
    )
    sql = render_sql("validate", contract, TableNames("sf"))
    assert (
        f"IF(REGEXP_CONTAINS(TRIM(`units`), r'{INT_PATTERN}'), SAFE_CAST(TRIM(`units`) AS INT64)"
        in sql
    )


def test_features_uses_the_shared_series_id_rule():
    multi = render_sql("features", load_contract("retail"), TableNames("sf"))
    assert (
        "ARRAY_TO_STRING([CAST(`store_id` AS STRING), CAST(`item_id` AS STRING)], '|') AS series_id"
    ) in multi
    single = render_sql("features", load_contract("takeaway"), TableNames("sf"))
    assert "'total' AS series_id" in single


def test_features_fill_rules_render_as_coalesce_with_the_constant():
    sql = render_sql("features", load_contract("takeaway"), TableNames("sf"))
    assert "COALESCE(`holiday_name`, '') AS `holiday_name`" in sql
    assert "COALESCE(`dinner_impact_score`, 0.0) AS `dinner_impact_score`" in sql
    assert "COALESCE(`is_holiday`, FALSE) AS `is_holiday`" in sql
    assert "COALESCE(`is_weekend`, FORMAT_DATE('%u', `date`) IN ('6', '7'))" in sql
    # Observed-only columns are never filled.
    assert re.search(r"^\s*`tavg`,$", sql, re.M)


def test_create_tables_uses_the_contract_types():
    sql = render_sql("create_tables", load_contract("retail"), TableNames("sf"))
    for name, ctype in [("date", "DATE"), ("store_id", "STRING"), ("on_promo", "BOOL")]:
        assert f"`{name}` {ctype}," in sql


def test_render_refuses_an_unknown_template_variable(tmp_path, monkeypatch):
    import jinja2
    from sales_forecast import sqlrender

    (tmp_path / "bad.sql").write_text("SELECT {{ no_such_thing }}")
    monkeypatch.setattr(sqlrender, "SQL_DIR", tmp_path)
    with pytest.raises(jinja2.UndefinedError):
        render_sql("bad", load_contract("retail"), TableNames("sf"))


def test_render_passes_params_through():
    contract = parse_contract(
        {
            "name": "x",
            "date_column": "day",
            "target": "units",
            "columns": [{"name": "day", "type": "DATE"}, {"name": "units", "type": "INT64"}],
        }
    )
    sql = render_sql("quarantine", contract, TableNames("sf"))
    assert "@run_id" in sql and "`sf.rejected_rows`" in sql


# --------------------------------------------------------------------------- to_duckdb


def test_to_duckdb_splits_statements_and_drops_empty_ones():
    statements = to_duckdb(
        "CREATE TABLE `sf.a` (x INT64);;\n-- a comment\nSELECT SAFE_CAST('1' AS INT64);"
    )
    assert len(statements) == 2
    assert statements[0] == 'CREATE TABLE "sf"."a" (x BIGINT)'
    assert "TRY_CAST('1' AS BIGINT)" in statements[1]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA sf")
    for statement in statements:
        con.execute(statement)

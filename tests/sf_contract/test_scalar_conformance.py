"""The text-to-value rule is written twice: validate.sql types staged text in the warehouse,
``sf_contract.scalars.parse_scalar`` types future files, fill constants and request values.

Each sample text goes through validate.sql on DuckDB (the statements BigQuery runs, transpiled)
and through parse_scalar; both must agree on whether it is valid and, if so, on its value.
"""

import datetime as dt

import pytest
from sales_forecast.platforms.local import DuckDBWarehouse

from sf_contract.constants import BOOL_FALSE, BOOL_TRUE
from sf_contract.scalars import ScalarError, parse_scalar
from sf_contract.schema import parse_contract

# Every day of the file is on or before the run's cut-off.
FAR_CUTOFF = dt.date(9999, 12, 30)

SAMPLES = {
    "FLOAT64": [
        "1.5", " -2 ", "1e3", "+.5", "3.", "2.5E-2", "0", "-0.0", "abc", "nan", "NaN", "-inf",
        "Infinity", "1e999", "1_000", "1,5", "0x10", "٣", "1.5.1", "--1",
    ],
    "INT64": [
        "7", "-7", "+0012", " 3 ", "0", "1.5", "1e3", "1_000", "٣", "abc", "--1", "0x1F",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "9" * 30,
    ],
    "BOOL": [*BOOL_TRUE, *BOOL_FALSE, "TRUE", " Yes ", "N", "maybe", "2", "on", "off", "tru"],
    "DATE": [
        "2024-01-01", " 2024-02-29 ", "20240101", "2024-W01-1", "2024-1-1", "2024-02-30",
        "2023-02-29", "2024-13-01", "01/04/2024", "2024-01-01T00:00", "２０２４-01-01",
        "0000-01-01",  # DuckDB reads it as 1 BC; BigQuery and Python refuse it
    ],
}  # fmt: skip
CASES = [(ctype, text) for ctype, texts in SAMPLES.items() for text in texts]
COLUMN = {"FLOAT64": "f", "INT64": "i", "BOOL": "b", "DATE": "d"}


@pytest.fixture(scope="module")
def typed(tmp_path_factory) -> dict[tuple[str, str], object]:
    """(type, text) -> what validate.sql made of the text (None: not a valid value)."""
    contract = parse_contract(
        {
            "name": "scalars",
            "date_column": "date",
            "target": "sales",
            "columns": [
                {"name": "date", "type": "DATE"},
                {"name": "sales", "type": "FLOAT64"},
                *({"name": c, "type": t, "role": "observed"} for t, c in COLUMN.items()),
            ],
        }
    )
    tmp = tmp_path_factory.mktemp("scalars")
    lines = [",".join(contract.column_names)]
    day = dt.date(2024, 1, 1)
    for n, (ctype, text) in enumerate(CASES):
        values = {c: "" for c in COLUMN.values()}
        values[COLUMN[ctype]] = '"' + text.replace('"', '""') + '"'
        date = day + dt.timedelta(days=n)
        lines.append(",".join([str(date), "1", *values.values()]))
    path = tmp / "samples.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wh = DuckDBWarehouse(tmp / "w.duckdb", "sf")
    wh.load_csv_to_staging(str(path), contract.column_names, contract)
    wh.run_script("validate", contract, cutoff=FAR_CUTOFF)
    rows = wh.query(f"SELECT * FROM {wh.tables.staging_checked} ORDER BY _source_row")
    assert len(rows) == len(CASES)
    return {case: row[COLUMN[case[0]]] for case, row in zip(CASES, rows, strict=True)}


@pytest.mark.parametrize(("ctype", "text"), CASES, ids=[f"{t}:{x!r}" for t, x in CASES])
def test_sql_and_parse_scalar_agree(typed, ctype, text):
    try:
        expected = parse_scalar(text, ctype)
    except ScalarError:
        expected = None
    assert typed[(ctype, text)] == expected


# A contract's date_format: the SQL builds ISO text from the format's regular expressions and
# casts it, Python parses with the same expressions; both must agree on each text.
FORMAT_SAMPLES = {
    "%d/%m/%Y": [
        "01/02/2025", "1/2/2025", " 31/10/2025 ", "29/02/2024", "31/02/2025", "29/02/2025",
        "00/01/2025", "01/13/2025", "01/00/2025", "01/02/0000", "2025-10-31", "01/02/25",
        "001/02/2025", "01-02-2025", "01/02/2025x", "x01/02/2025", "٠١/٠٢/٢٠٢٥", "1/2/ 2025",
        "31/12/9999", "01/01/0001",
    ],
    "%Y%m%d": ["20250201", "2025021", "20250231", "2025-02-01", "00000101", "202502010"],
    "%m.%d.%Y": ["02.01.2025", "2.1.2025", "02x01x2025", "13.01.2025", "02.30.2025"],
}  # fmt: skip
FORMAT_CASES = [(fmt, text) for fmt, texts in FORMAT_SAMPLES.items() for text in texts]


@pytest.fixture(scope="module")
def typed_in_format(tmp_path_factory) -> dict[tuple[str, str], object]:
    """(format, text) -> what validate.sql made of the text in a contract with that format."""
    out: dict[tuple[str, str], object] = {}
    for n, (fmt, texts) in enumerate(FORMAT_SAMPLES.items()):
        contract = parse_contract(
            {
                "name": "formats",
                "date_column": "date",
                "target": "sales",
                "date_format": fmt,
                "columns": [
                    {"name": "date", "type": "DATE"},
                    {"name": "sales", "type": "FLOAT64"},
                    {"name": "d", "type": "DATE", "role": "observed"},
                ],
            }
        )
        tmp = tmp_path_factory.mktemp(f"format{n}")
        day = dt.date(2024, 1, 1)
        lines = ["date,sales,d"]
        for i, text in enumerate(texts):
            date = (day + dt.timedelta(days=i)).strftime(fmt)
            lines.append(f'{date},1,"{text}"')
        path = tmp / "samples.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        wh = DuckDBWarehouse(tmp / "w.duckdb", "sf")
        wh.load_csv_to_staging(str(path), contract.csv_headers, contract)
        wh.run_script("validate", contract, cutoff=FAR_CUTOFF)
        rows = wh.query(f"SELECT * FROM {wh.tables.staging_checked} ORDER BY _source_row")
        assert len(rows) == len(texts)
        # The date column itself was written in the format: every row's date was read.
        assert all(r["date"] == day + dt.timedelta(days=i) for i, r in enumerate(rows))
        out.update({(fmt, text): row["d"] for text, row in zip(texts, rows, strict=True)})
    return out


@pytest.mark.parametrize(("fmt", "text"), FORMAT_CASES, ids=[f"{f}:{x!r}" for f, x in FORMAT_CASES])
def test_sql_and_parse_date_agree_on_a_contracts_format(typed_in_format, fmt, text):
    try:
        expected = parse_scalar(text, "DATE", date_format=fmt)
    except ScalarError:
        expected = None
    assert typed_in_format[(fmt, text)] == expected


def test_the_format_samples_hold_both_outcomes():
    """31/02/2025 is refused and 01/02/2025 accepted, by both (not a vacuous agreement)."""
    assert parse_scalar("01/02/2025", "DATE", date_format="%d/%m/%Y") == dt.date(2025, 2, 1)
    with pytest.raises(ScalarError):
        parse_scalar("31/02/2025", "DATE", date_format="%d/%m/%Y")

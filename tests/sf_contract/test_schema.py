"""Every rule of the one contract parser (``sf_contract.schema``).

The rules are the union of the two parsers it replaced (the Airflow side's and the trainer's),
taking the stricter of the two wherever they disagreed; the cases where they disagreed are
marked below.
"""

import copy
import datetime as dt
import json

import pytest
from sales_forecast.contract import BUILTIN_CONTRACTS, load_contract

from sf_contract.constants import RESERVED_COLUMNS
from sf_contract.schema import Column, Contract, ContractError, parse_contract
from tests._support.contracts import pos_contract_doc


def minimal() -> dict:
    """The smallest valid contract: a date and a target, one series."""
    return {
        "name": "x",
        "date_column": "day",
        "target": "units",
        "series_keys": [],
        "columns": [
            {"name": "day", "type": "DATE", "role": "date"},
            {"name": "units", "type": "FLOAT64", "role": "target"},
        ],
    }


def with_column(**column) -> dict:
    data = minimal()
    data["columns"].append(column)
    return data


def keyed() -> dict:
    data = minimal()
    data["series_keys"] = ["shop"]
    data["columns"].insert(1, {"name": "shop", "type": "STRING", "role": "key"})
    return data


# --------------------------------------------------------------------------- shipped contracts


@pytest.mark.parametrize("name", BUILTIN_CONTRACTS)
def test_shipped_contracts_parse_and_round_trip(name):
    contract = load_contract(name)
    assert isinstance(contract, Contract) and contract.name == name
    again = parse_contract(json.loads(json.dumps(contract.to_dict())), source="json")
    assert again == contract
    assert again.to_dict() == contract.to_dict()


def test_schema_fields_for_bigquery():
    c = load_contract("retail")
    typed = c.bigquery_schema_fields()
    assert typed[0] == {"name": "date", "type": "DATE", "mode": "REQUIRED"}
    assert {"name": "price", "type": "FLOAT64", "mode": "NULLABLE"} in typed
    staged = c.bigquery_schema_fields(all_strings=True)
    assert {f["type"] for f in staged} == {"STRING"}
    assert [f["name"] for f in staged] == c.column_names
    assert [f["mode"] for f in staged] == ["NULLABLE"] * len(c.columns)


def test_to_dict_roundtrips_through_json():
    c = load_contract("retail")
    data = json.loads(json.dumps(c.to_dict()))
    assert data["target"] == "sales"
    assert data["series_keys"] == ["store_id", "item_id"]
    price = next(col for col in data["columns"] if col["name"] == "price")
    assert price == {"name": "price", "type": "FLOAT64", "role": "known", "future_fill": "last"}


def test_round_trip_keeps_extra_keys_description_and_non_default_nullable():
    data = with_column(name="temp", type="FLOAT64", role="observed", nullable=False)
    data["description"] = "d"
    data["owner"] = {"team": "forecasting"}
    contract = parse_contract(data)
    assert contract.extra == {"owner": {"team": "forecasting"}}
    doc = json.loads(json.dumps(contract.to_dict()))
    assert doc["owner"] == {"team": "forecasting"} and doc["description"] == "d"
    assert doc["columns"][-1]["nullable"] is False
    again = parse_contract(doc)
    assert again == contract and again.column("temp").nullable is False
    assert Contract.from_dict(doc) == contract


# --------------------------------------------------------------------------- accepted contracts


def test_roles_are_inferred_from_the_top_level_fields():
    # The trainer's parser allowed this; the resolved JSON the trainer receives may rely on it.
    data = keyed()
    for col in data["columns"]:
        col.pop("role")
    contract = parse_contract(data)
    assert [c.role for c in contract.columns] == ["date", "key", "target"]


def test_defaults_names_and_types_are_normalised():
    data = with_column(name="price", type="float64", role="known")
    data["name"] = "shop_sales"
    del data["series_keys"]
    contract = parse_contract(data)
    price = contract.column("price")
    assert contract.name == "shop_sales" and contract.description == ""
    assert price.type == "FLOAT64" and price.future_fill == "last" and price.nullable
    assert contract.column("day").nullable is False
    assert contract.column("units").future_fill is None
    assert contract.series_keys == ()


def test_roles_and_lookups():
    data = keyed()
    data["columns"] += [
        {"name": "price", "type": "FLOAT64", "role": "known"},
        {"name": "region", "type": "STRING", "role": "static"},
        {"name": "temp", "type": "FLOAT64", "role": "observed"},
    ]
    contract = parse_contract(data)
    assert contract.column_names == ["day", "shop", "units", "price", "region", "temp"]
    assert [c.name for c in contract.known_columns] == ["price"]
    assert [c.name for c in contract.static_columns] == ["region"]
    assert [c.name for c in contract.observed_columns] == ["temp"]
    assert [c.name for c in contract.covariates] == ["price", "region", "temp"]
    assert [c.name for c in contract.by_role("date", "key")] == ["day", "shop"]
    with pytest.raises(ContractError, match="has no column 'nope'"):
        contract.column("nope")


@pytest.mark.parametrize(
    ("ctype", "raw", "rule", "value"),
    [
        ("FLOAT64", None, "last", None),
        ("FLOAT64", "LAST", "last", None),
        ("FLOAT64", "zero", "zero", 0.0),
        ("INT64", "Zero", "zero", 0.0),
        ("BOOL", "zero", "zero", False),
        ("BOOL", "false", "false", False),
        ("BOOL", False, "false", False),  # YAML reads an unquoted false as a boolean
        ("BOOL", "weekend", "weekend", None),
        ("BOOL", "value:yes", "value:yes", True),
        ("BOOL", "value:F", "value:F", False),
        ("FLOAT64", "value:1.5", "value:1.5", 1.5),
        ("INT64", "value:-3", "value:-3", -3),
        ("STRING", "value:", "value:", ""),
        ("STRING", "value:None", "value:None", "None"),
        ("STRING", "VALUE:Mixed Case", "value:Mixed Case", "Mixed Case"),
        ("DATE", "value:2024-01-31", "value:2024-01-31", dt.date(2024, 1, 31)),
    ],
)
def test_fill_rules_and_their_constants(ctype, raw, rule, value):
    column = {"name": "x", "type": ctype, "role": "known"}
    if raw is not None:
        column["future_fill"] = raw
    col = parse_contract(with_column(**column)).column("x")
    assert col.future_fill == rule
    assert col.fill_value() == value and type(col.fill_value()) is type(value)


def test_string_fill_constants_up_to_the_limit_are_kept_as_written():
    text = 'O\'Brien \\ "x" ; -- ' + "é" * 150 + "🍣"
    assert len(text) <= 200
    col = parse_contract(
        with_column(name="x", type="STRING", role="known", future_fill="value:" + text)
    ).column("x")
    assert col.fill_value() == text


def test_fill_value_of_a_hand_built_column():
    assert Column("x", "FLOAT64", "known").fill_value() is None  # no rule means last
    assert Column("x", "INT64", "known", future_fill="value:7").fill_value() == 7


# --------------------------------------------------------------------------- rejected contracts


def _set(path, value):
    def change(d):
        target = d
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _drop(key):
    return lambda d: d.pop(key)


def _col(**column):
    return lambda d: d["columns"].append(column)


def _fill(ctype, rule):
    return _col(name="x", type=ctype, role="known", future_fill=rule)


REJECTED = [
    # the document
    ("missing name", _drop("name"), "missing required key 'name'"),
    ("missing date_column", _drop("date_column"), "missing required key 'date_column'"),
    ("missing target", _drop("target"), "missing required key 'target'"),
    ("missing columns", _drop("columns"), "missing required key 'columns'"),
    ("empty name", _set(["name"], "  "), "name must be a non-empty string"),
    ("name not a string", _set(["name"], 3), "name must be a non-empty string"),
    # The name becomes part of warehouse and model names, pasted into SQL (review D1).
    ("name with a quote", _set(["name"], 'x"; DROP TABLE t; --'), "contract name .* not a valid"),
    ("name with a space", _set(["name"], "shop sales"), "contract name 'shop sales' is not a"),
    ("name with a path", _set(["name"], "../x"), "contract name '../x' is not a valid name"),
    ("name with a backtick", _set(["name"], "a`b"), "contract name 'a`b' is not a valid"),
    ("name ending in a newline", _set(["name"], "x\n"), r"contract name 'x\\n' is not a"),
    ("name padded", _set(["name"], " x "), "contract name ' x ' is not a valid name"),
    ("name not ASCII", _set(["name"], "stör"), "contract name 'stör' is not a valid name"),
    ("name leading digit", _set(["name"], "1x"), "contract name '1x' is not a valid name"),
    ("name too long", _set(["name"], "a" * 129), "contract name 'aaa.*\\.\\.\\. is not a"),
    ("date_column not a name", _set(["date_column"], "d;ay"), "date_column 'd;ay' is not a valid"),
    ("date_column not a str", _set(["date_column"], 3), "date_column 3 is not a valid name"),
    ("target not a name", _set(["target"], "u'nits"), "target \"u'nits\" is not a valid name"),
    ("series key not a name", _set(["series_keys"], ["a b"]), "series key 'a b' is not a valid"),
    ("series key not a str", _set(["series_keys"], [1]), "series key 1 is not a valid name"),
    ("no columns", _set(["columns"], []), "columns must be a non-empty list"),
    ("columns not a list", _set(["columns"], {"day": "DATE"}), "columns must be a non-empty list"),
    ("series_keys a string", _set(["series_keys"], "shop"), "series_keys must be a list"),
    # one column
    ("column not a mapping", _col(), "every column needs at least a name"),
    ("column a string", lambda d: d["columns"].append("price"), "every column needs at least"),
    ("bad identifier", _col(name="bad name", type="STRING", role="static"), "identifier"),
    ("leading digit", _col(name="1st", type="STRING", role="static"), "identifier"),
    ("too long", _col(name="a" * 129, type="STRING", role="static"), "identifier"),
    ("trailing newline", _col(name="p\n", type="STRING", role="static"), "identifier"),
    ("not a string", _col(name=7, type="STRING", role="static"), "column name 7 is not a valid"),
    ("reserved", _col(name="series_id", type="STRING", role="static"), "reserved"),
    ("reserved any case", _col(name="Run_ID", type="STRING", role="static"), "reserved"),
    ("unknown type", _col(name="p", type="TEXT", role="static"), "has type 'TEXT'"),
    ("no type", _col(name="p", role="static"), "has type ''"),
    ("unknown role", _col(name="p", type="FLOAT64", role="weather"), "has role 'weather'"),
    ("no role", _col(name="p", type="FLOAT64"), "has role ''"),
    ("nullable text", _col(name="p", type="FLOAT64", role="known", nullable="no"), "nullable"),
    ("nullable int", _col(name="p", type="FLOAT64", role="known", nullable=0), "true or false"),
    ("nullable date", _set(["columns", 0, "nullable"], True), "date column 'day' cannot be null"),
    ("nullable target", _set(["columns", 1, "nullable"], True), "target column 'units' cannot"),
    # fill rules
    ("fill on observed", _col(name="t", type="FLOAT64", role="observed", future_fill="zero"),
     "future_fill only applies to known and forecast columns"),
    ("fill on static", _col(name="t", type="STRING", role="static", future_fill="last"),
     "future_fill only applies to known and forecast columns"),
    ("fill on target", _set(["columns", 1, "future_fill"], "zero"), "only applies to known"),
    ("unknown fill", _fill("FLOAT64", "mean"), "has future_fill 'mean'; use last, zero"),
    ("empty fill", _fill("FLOAT64", ""), "has future_fill ''"),
    ("fill value without colon", _fill("STRING", "value"), "has future_fill 'value'"),
    ("fill true", _fill("BOOL", True), "has future_fill 'True'"),
    # The Airflow side accepted these three; the trainer rejected them at `train`.
    ("false on FLOAT64", _fill("FLOAT64", "false"), "future_fill false needs a BOOL column"),
    ("zero on STRING", _fill("STRING", "zero"), "'zero' needs a numeric or BOOL column"),
    ("value:maybe on BOOL", _fill("BOOL", "value:maybe"), "'value:maybe' is not a BOOL value"),
    ("false on INT64", _fill("INT64", False), "future_fill false needs a BOOL column"),
    ("zero on DATE", _fill("DATE", "zero"), "needs a numeric or BOOL column"),
    ("weekend on FLOAT64", _fill("FLOAT64", "weekend"), r"weekend \(Saturday or Sunday\) needs"),
    ("weekend on STRING", _fill("STRING", "weekend"), "needs a BOOL column"),
    ("value:abc on FLOAT64", _fill("FLOAT64", "value:abc"), "is not a FLOAT64 value"),
    ("value:nan on FLOAT64", _fill("FLOAT64", "value:nan"), "is not a FLOAT64 value"),
    ("value:1.5 on INT64", _fill("INT64", "value:1.5"), "is not a INT64 value"),
    ("value:20240101 on DATE", _fill("DATE", "value:20240101"), "is not a DATE value"),
    ("value:2024-W01-1 on DATE", _fill("DATE", "value:2024-W01-1"), "is not a DATE value"),
    # The shared scalar rule keeps SQL text out of typed constants (review D1's second attack).
    ("value:\\ on FLOAT64", _fill("FLOAT64", "value:\\"), "is not a FLOAT64 value"),
    ("value:SQL on BOOL", _fill("BOOL", "value:') OR 1=1; --"), "is not a BOOL value"),
    ("STRING value: too long", _fill("STRING", "value:" + "x" * 201),
     "201 characters long; at most 200"),
    ("STRING value: newline", _fill("STRING", "value:a\nb"), r"control character '\\n'"),
    ("STRING value: NUL", _fill("STRING", "value:a\x00"), r"control character '\\x00'"),
    ("STRING value: ESC", _fill("STRING", "value:\x1b[2J"), r"control character '\\x1b'"),
    ("STRING value: DEL", _fill("STRING", "value:a\x7f"), r"control character '\\x7f'"),
    ("FLOAT64 value: newline", _fill("FLOAT64", "value:1\n"), "control character"),
    # across columns
    ("duplicate", _col(name="units", type="FLOAT64", role="observed"), "duplicate column names"),
    ("duplicate any case", _col(name="Units", type="FLOAT64", role="observed"),
     r"duplicate column names \['Units', 'units'\]"),
    ("target absent", _set(["target"], "nope"), "target column 'nope' is not among the columns"),
    ("date absent", _set(["date_column"], "when"), "date column 'when' is not among"),
    ("key absent", _set(["series_keys"], ["shop"]), "key column 'shop' is not among"),
    ("date with another role", _set(["columns", 0, "role"], "known"),
     "column 'day' must have role 'date'"),
    ("target with another role", _set(["columns", 1, "role"], "observed"),
     "column 'units' must have role 'target'"),
    ("date not DATE", _set(["columns", 0, "type"], "STRING"), "date column must have type DATE"),
    ("target STRING", _set(["columns", 1, "type"], "STRING"), "target must be FLOAT64 or INT64"),
    ("target BOOL", _set(["columns", 1, "type"], "BOOL"), "target must be FLOAT64 or INT64"),
    ("two dates", _col(name="day2", type="DATE", role="date"), "exactly one column .* 'date'"),
    ("two targets", _col(name="u2", type="INT64", role="target"), "exactly one column .*'target'"),
    ("key not listed", _col(name="shop", type="STRING", role="key"),
     r"key columns \['shop'\] are not listed in series_keys"),
    # availability and optional columns
    ("availability STRING", _col(name="open", type="STRING", role="availability"),
     "availability column 'open' must be BOOL .* or a number"),
    ("availability DATE", _col(name="open", type="DATE", role="availability"), "must be BOOL"),
    ("availability not nullable",
     _col(name="open", type="BOOL", role="availability", nullable=False),
     "cannot be non-nullable: a missing value means available"),
    ("availability fill", _col(name="open", type="BOOL", role="availability", future_fill="false"),
     "future_fill only applies to known and forecast columns"),
    ("two availability columns", lambda d: d["columns"].extend([
        {"name": "open", "type": "BOOL", "role": "availability"},
        {"name": "stock", "type": "INT64", "role": "availability"},
    ]), r"2 availability columns \['open', 'stock'\]; a contract has at most one"),
    ("required not a bool", _col(name="p", type="FLOAT64", role="known", required="no"),
     "required must be true or false"),
    ("optional date", _set(["columns", 0, "required"], False),
     "the date column 'day' cannot be left out of a file"),
    ("optional target", _set(["columns", 1, "required"], False),
     "the target column 'units' cannot be left out"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [pytest.param(change, message, id=case) for case, change, message in REJECTED],
)
def test_invalid_contracts_are_rejected_with_a_reason(change, message):
    data = minimal()
    change(data)
    with pytest.raises(ContractError, match=message) as err:
        parse_contract(data, source="mine.yaml")
    assert str(err.value).startswith("mine.yaml: ")  # every message names its file


@pytest.mark.parametrize("data", [[], "name: x", None, 3])
def test_a_contract_is_a_mapping(data):
    with pytest.raises(ContractError, match="a contract is a mapping"):
        parse_contract(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["series_keys"].append("shop"), "series_keys lists a column twice"),
        (lambda d: d["columns"][1].update(role="static"), "column 'shop' must have role 'key'"),
        (lambda d: d["columns"][1].update(nullable=True), "key column 'shop' cannot be nullable"),
        (lambda d: d["columns"][1].update(future_fill="last"), "only applies to known and"),
    ],
)
def test_series_key_rules(change, message):
    data = keyed()
    change(data)
    with pytest.raises(ContractError, match=message):
        parse_contract(data)


# The cases of the Airflow side's old test, kept as they were (same base, same changes).
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "nope"}, "target column 'nope' is not among the columns"),
        ({"series_keys": ["units"]}, "must have role 'key'"),
        ({"columns": [{"name": "day", "type": "DATE", "role": "date"}]}, "target column"),
        ({"columns": [{"name": "day", "type": "TEXT", "role": "date"}]}, "has type 'TEXT'"),
        ({"columns": [{"name": "series_id", "type": "STRING", "role": "key"}]}, "reserved"),
        ({"columns": [{"name": "bad name", "type": "STRING", "role": "key"}]}, "identifier"),
        (
            {
                "columns": [
                    {"name": "p", "type": "FLOAT64", "role": "known", "future_fill": "weekend"}
                ]
            },
            "needs a BOOL column",
        ),
    ],
)
def test_airflow_side_cases_are_still_rejected(change, message):
    base = {
        "name": "x",
        "date_column": "day",
        "target": "units",
        "series_keys": [],
        "columns": [
            {"name": "day", "type": "DATE", "role": "date"},
            {"name": "units", "type": "FLOAT64", "role": "target"},
        ],
    }
    with pytest.raises(ContractError, match=message):
        parse_contract({**base, **change})


@pytest.mark.parametrize("name", sorted(RESERVED_COLUMNS))
def test_every_reserved_name_is_refused(name):
    with pytest.raises(ContractError, match="reserved by the pipeline"):
        parse_contract(with_column(name=name, type="STRING", role="static"))


def test_parsing_does_not_change_its_input():
    data = with_column(name="on_promo", type="bool", role="known", future_fill=False)
    before = copy.deepcopy(data)
    parse_contract(data)
    assert data == before


# --------------------------------------------------------------------------- header, date_format


def pos_export() -> dict:
    """A point-of-sale export as it comes: its own header names and day-first dates."""
    return pos_contract_doc(sales=" Units Sold ")  # the header is trimmed


def test_a_column_may_name_its_header_in_the_file():
    contract = parse_contract(pos_export())
    assert contract.column_names == ["date", "store_id", "item_id", "sales", "price", "on_promo"]
    # Trimmed, as the file's header is.
    assert contract.csv_headers == ["Date", "Store", "SKU", "Units Sold", "Unit Price", "Promo"]
    assert contract.column_for_header("Units Sold").name == "sales"
    assert contract.column("sales").label == "'Units Sold' (sales)"
    assert contract.date_format == "%d/%m/%Y"
    with pytest.raises(ContractError, match="no column with the header 'sales'"):
        contract.column_for_header("sales")  # a mapped column is read from its header only


def test_without_a_header_a_column_is_read_from_its_name():
    contract = parse_contract(minimal())
    assert contract.csv_headers == contract.column_names
    assert contract.column("units").header is None
    assert contract.column("units").label == "'units'"
    assert contract.date_format is None
    assert "date_format" not in contract.to_dict()
    assert all("header" not in c for c in contract.to_dict()["columns"])


def test_header_and_date_format_round_trip_to_the_trainer():
    contract = parse_contract(pos_export())
    doc = json.loads(json.dumps(contract.to_dict()))
    assert doc["date_format"] == "%d/%m/%Y"
    assert doc["columns"][3]["header"] == "Units Sold"
    assert "date_format" not in contract.extra  # a key of the schema, not an extra
    again = parse_contract(doc, source="contract.json")
    assert again == contract and again.to_dict() == contract.to_dict()


@pytest.mark.parametrize(
    "header",
    ["Units Sold", "Ventes (€)", "units-sold/day", "a'b\"c`d;--", "販売数", "x" * 128, "sales"],
)
def test_a_header_may_be_any_printable_text(header):
    contract = parse_contract(with_column(name="p", type="FLOAT64", role="known", header=header))
    assert contract.column("p").csv_header == header


def _header(value):
    return _col(name="p", type="FLOAT64", role="known", header=value)


HEADER_REJECTED = [
    ("not a text", _header(7), "column 'p': header must be a text"),
    ("a list", _header(["a"]), "column 'p': header must be a text"),
    ("empty", _header(""), "column 'p': header is empty"),
    ("blank", _header("   "), "column 'p': header is empty"),
    ("too long", _header("x" * 129), "header is 129 characters long; at most 128"),
    ("newline", _header("Units\nSold"), r"unprintable character '\\n' \(U\+000A\)"),
    ("tab", _header("Units\tSold"), "unprintable character"),
    ("NUL", _header("a\x00"), "unprintable character"),
    ("escape", _header("a\x1b[2J"), "unprintable character"),
    ("zero-width", _header("Units\u200bSold"), r"U\+200B"),
    ("line separator", _header("a\u2028b"), r"U\+2028"),
    ("same as another's", _header("units"),
     "columns 'units' and 'p' would both be read from the file's column 'units'"),
    ("differs in case only", _header("UNITS"), "headers must differ by more than case"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [pytest.param(change, message, id=case) for case, change, message in HEADER_REJECTED],
)
def test_invalid_headers_are_rejected_with_a_reason(change, message):
    data = minimal()
    change(data)
    with pytest.raises(ContractError, match=message) as err:
        parse_contract(data, source="mine.yaml")
    assert str(err.value).startswith("mine.yaml: ")


def test_two_columns_cannot_share_a_header():
    data = pos_export()
    data["columns"][4]["header"] = "Units Sold"
    with pytest.raises(ContractError, match="'sales' and 'price' would both be read"):
        parse_contract(data)


def test_headers_may_swap_names():
    data = minimal()
    data["columns"] = [
        {"name": "day", "type": "DATE", "role": "date"},
        {"name": "units", "type": "FLOAT64", "role": "target", "header": "price"},
        {"name": "price", "type": "FLOAT64", "role": "known", "header": "units"},
    ]
    assert parse_contract(data).csv_headers == ["day", "price", "units"]


@pytest.mark.parametrize(
    "fmt", ["%d/%m/%Y", "%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%d.%m.%Y", "%d %m %Y"]
)
def test_date_formats_of_the_supported_subset_are_kept(fmt):
    assert parse_contract({**minimal(), "date_format": fmt}).date_format == fmt


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("%d/%m/%y", r"'%y' is not supported \(two-digit years are ambiguous: use %Y\)"),
        ("%b %d %Y", "'%b' is not supported"),
        ("%e/%m/%Y", "'%e' is not supported"),
        ("%Y-%m-%dT%H:%M", "'T' is neither a field nor a separator"),
        ("%d/%m", "%Y is missing"),
        ("%Y-%m-%d-%d", "%d appears more than once"),
        ("%Y-%m-%d ", "it must start and end with a field"),
        ("%Y-%m-%", "'%' is not supported"),
        ("", "must be a non-empty text"),
        (20250101, "date_format must be a text such as '%d/%m/%Y'"),
        ("%Y" + "-" * 40 + "%m-%d", "longer than 32 characters"),
    ],
)
def test_unsupported_date_formats_are_rejected_with_what_is_allowed(fmt, message):
    with pytest.raises(ContractError, match=message) as err:
        parse_contract({**minimal(), "date_format": fmt}, source="mine.yaml")
    assert str(err.value).startswith("mine.yaml: ")
    if isinstance(fmt, str) and fmt:
        assert "use %Y %m %d, each once" in str(err.value)


# --------------------------------------------------------------------------- availability


@pytest.mark.parametrize(
    ("ctype", "values", "available"),
    [
        ("BOOL", [True, False, None, "false", " YES ", ""], [True, False, True, False, True, True]),
        ("INT64", [0, 1, -2, None, "3", "0"], [False, True, False, True, True, False]),
        ("FLOAT64", [0.0, 0.5, float("nan"), "-0.1"], [False, True, True, False]),
    ],
)
def test_availability_rule(ctype, values, available):
    data = with_column(name="open", type=ctype, role="availability")
    col = parse_contract(data).availability_column
    assert col is not None and col.name == "open"
    assert [col.is_available(v) for v in values] == available


def test_an_optional_column_round_trips_and_defaults_to_required():
    data = with_column(name="open", type="BOOL", role="availability", required=False)
    data["columns"].append({"name": "price", "type": "FLOAT64", "role": "known"})
    c = parse_contract(data)
    assert not c.column("open").required and c.column("price").required
    back = parse_contract(json.loads(json.dumps(c.to_dict())))
    assert back == c and not back.column("open").required
    assert "required" not in c.to_dict()["columns"][-1]
    assert parse_contract(minimal()).availability_column is None

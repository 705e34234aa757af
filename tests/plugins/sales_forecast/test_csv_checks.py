import pytest
from sales_forecast.contract import load_contract
from sales_forecast.csv_checks import check_header, parse_csv_header
from sales_forecast.errors import DataError

from tests._support.contracts import POS_HEADER, pos_contract_doc

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        ((HEADER + "\n").encode(), "header but no data rows"),
        (b"\xff\xfe\x00bad\n1,2\n", "line 1: not UTF-8"),
    ],
)
def test_unusable_files(content, message):
    with pytest.raises(DataError, match=message) as err:
        parse_csv_header(content, "gs://b/in.csv")
    assert "gs://b/in.csv" in str(err.value)  # the user's URI, whatever was read


def test_header_is_parsed_and_trimmed_and_a_bom_ignored():
    head = ("\ufeff" + HEADER.replace(",", " , ") + "\n2024-01-01,S01\n").encode()
    assert parse_csv_header(head, "f.csv") == HEADER.split(",")


def test_a_probe_that_cuts_a_character_in_two_is_not_an_encoding_error():
    row = "2024-01-01,Café,I001,3,1.5,false,false,5\n"
    head = (HEADER + "\n" + row).encode()
    cut = head[: head.index("é".encode()) + 1]  # ends inside the two-byte é
    assert parse_csv_header(cut, "f.csv") == HEADER.split(",")


def test_header_mismatch_names_the_problem():
    contract = load_contract("retail")
    header = [*HEADER.split(",")[:-1], "humidity", "sales"]
    with pytest.raises(DataError) as err:
        check_header(header, contract, "f.csv")
    msg = str(err.value)
    assert "f.csv: line 1 (header)" in msg
    assert "missing columns ['temperature']" in msg
    assert "unknown columns ['humidity']" in msg
    assert "duplicate columns ['sales']" in msg
    check_header(list(reversed(HEADER.split(","))), contract, "f.csv")  # order is free


def _header_error(first_line: str) -> str:
    head = (first_line + "\n2024-01-01,S01\n").encode()
    with pytest.raises(DataError) as err:
        check_header(parse_csv_header(head, "in.csv"), load_contract("retail"), "in.csv")
    return str(err.value)


def test_a_first_line_without_commas_is_never_quoted():
    # Review D7 (#23): /etc/passwd's first line came back as the one "unknown column".
    msg = _header_error("root:x:0:0:root:/root:/bin/bash")
    assert "the first line has no comma-separated header" in msg
    assert "root" not in msg and "bash" not in msg
    assert "Expected columns: ['date', 'store_id'" in msg  # still says what is wanted
    assert "fake-token" not in _header_error("internal-only: fake-token-0000")


def test_unknown_names_are_few_and_short():
    secret = "s3cr3t-" + "k" * 100
    names = [f"col{i}" for i in range(12)]
    msg = _header_error(",".join([secret, *names]))
    assert "k" * 41 not in msg  # each name cut to 40 characters
    assert repr(secret[:40]) + "..." in msg
    assert "'col3'" in msg and "'col4'" not in msg  # at most 5 names
    assert "... (8 more)" in msg
    assert len(msg) < 700


def test_names_are_shown_with_repr():
    msg = _header_error("date,store_id,item_id,sales,price,on_promo,is_holiday,temp\x1b[2J")
    assert "unknown columns ['temp\\x1b[2J']" in msg
    assert "\x1b" not in msg


def test_many_duplicates_and_blanks_are_cut_short_too():
    msg = _header_error(",".join(["x"] * 20 + [""] * 20 + ["y", "y"]))
    assert "duplicate columns ['x', 'y']" in msg
    assert "empty column name at position(s) [21, 22, 23, 24, 25, ... (15 more)]" in msg
    assert "missing columns ['date', 'store_id', 'item_id', 'sales', 'price', ... (3 more)]" in msg


def test_a_very_wide_header_is_checked_quickly():
    import time

    start = time.perf_counter()
    msg = _header_error(",".join(f"c{i}" for i in range(30000)))
    assert time.perf_counter() - start < 2
    assert "(29995 more)" in msg


# ------------------------------------------------------------------- a file's own header names


def pos_contract():
    from sf_contract.schema import parse_contract

    return parse_contract(pos_contract_doc())


def _pos_error(first_line: str) -> str:
    head = (first_line + "\n01/02/2025,S01\n").encode()
    with pytest.raises(DataError) as err:
        check_header(parse_csv_header(head, "pos.csv"), pos_contract(), "pos.csv")
    return str(err.value)


def test_an_export_is_matched_by_its_own_header_names_in_any_order():
    head = b" Units Sold ,Date,Store,SKU,Unit Price,Promo\n01/02/2025\n"
    check_header(parse_csv_header(head, "pos.csv"), pos_contract(), "pos.csv")
    check_header(POS_HEADER.split(","), pos_contract(), "pos.csv")


def test_a_missing_mapped_column_is_named_by_both_names():
    msg = _pos_error("Date,Store,SKU,Unit Price,Promo")
    assert "missing columns ['Units Sold' (sales)]" in msg
    assert (
        "Expected columns: ['Date' (date), 'Store' (store_id), 'SKU' (item_id), "
        "'Units Sold' (sales), 'Unit Price' (price), 'Promo' (on_promo)]"
    ) in msg


def test_the_contract_names_do_not_stand_in_for_the_header_names():
    msg = _pos_error("date,store_id,item_id,sales,price,on_promo")
    assert "missing columns ['Date' (date), 'Store' (store_id)" in msg
    assert "unknown columns ['date', 'store_id', 'item_id', 'sales', 'price', ... (1 more)]" in msg


def test_names_are_case_sensitive_with_a_hint_when_only_the_case_differs():
    msg = _pos_error("Date,Store,SKU,units sold,Unit Price,PROMO")
    assert "missing columns ['Units Sold' (sales), 'Promo' (on_promo)]" in msg
    assert "unknown columns ['units sold', 'PROMO']" in msg
    assert (
        "names are case-sensitive: 'units sold' is not 'Units Sold' (sales), "
        "'PROMO' is not 'Promo' (on_promo)"
    ) in msg


def test_an_unmapped_contract_keeps_its_messages():
    msg = _header_error("date,store_id,item_id,sales,price,on_promo,is_holiday,Temperature")
    assert "missing columns ['temperature']" in msg
    assert "names are case-sensitive: 'Temperature' is not 'temperature'" in msg
    assert "Expected columns: ['date', 'store_id', 'item_id', 'sales'" in msg

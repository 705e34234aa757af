import pytest
from sales_forecast.contract import load_contract
from sales_forecast.csv_checks import check_header, parse_csv_header
from sales_forecast.errors import DataError

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

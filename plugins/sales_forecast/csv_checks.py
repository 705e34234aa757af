"""What an input CSV must look like before anything is loaded: readable text, the right header.

The checks take the file's first bytes, not a path, so both platforms run them on whatever their
object store returns (a local file, a GCS object) and the messages name the user's own URI.
"""

from __future__ import annotations

import csv
import io

from sales_forecast.errors import DataError
from sf_contract.schema import Contract

__all__ = ["HEADER_PROBE_BYTES", "check_header", "parse_csv_header"]

# Enough for any header line and the start of the first row.
HEADER_PROBE_BYTES = 1 << 16


def parse_csv_header(head: bytes, uri: str) -> list[str]:
    """The header row from a file's first bytes; clear errors for an empty or header-only file."""
    if not head.strip():
        raise DataError(f"{uri}: the file is empty (no header, no rows)")
    second_line_present = head.count(b"\n") >= 1 and bool(head.split(b"\n", 1)[1].strip())
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # The probe may cut a multi-byte character at its end: that is not the file's fault.
        if exc.start < len(head) - 3:
            raise DataError(f"{uri}: line 1: not UTF-8 text ({exc.reason})") from None
        text = head[: exc.start].decode("utf-8-sig")
    first_line = text.splitlines()[0]
    header = next(csv.reader(io.StringIO(first_line)))
    if not second_line_present:
        raise DataError(f"{uri}: the file has a header but no data rows")
    return [h.strip() for h in header]


def check_header(header: list[str], contract: Contract, uri: str) -> None:
    """The CSV's columns must be exactly the contract's (any order)."""
    problems = []
    blanks = [i + 1 for i, h in enumerate(header) if not h]
    if blanks:
        problems.append(f"empty column name at position(s) {blanks}")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        problems.append(f"duplicate columns {dupes}")
    missing = [c for c in contract.column_names if c not in header]
    if missing:
        problems.append(f"missing columns {missing}")
    unknown = [h for h in header if h and h not in contract.column_names]
    if unknown:
        problems.append(f"unknown columns {unknown}")
    if problems:
        raise DataError(
            f"{uri}: line 1 (header) does not match the {contract.name!r} contract: "
            + "; ".join(problems)
            + f". Expected columns: {contract.column_names}"
        )

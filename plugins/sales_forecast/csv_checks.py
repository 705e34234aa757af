"""What an input CSV must look like before anything is loaded: readable text, the right header.

The checks take the file's first bytes, not a path, so both platforms run them on whatever their
object store returns (a local file, a GCS object) and the messages name the user's own URI.
"""

from __future__ import annotations

import csv
import io
from collections import Counter

from sales_forecast.errors import DataError
from sf_contract.schema import Contract

__all__ = ["HEADER_PROBE_BYTES", "check_header", "parse_csv_header"]

# Enough for any header line and the start of the first row.
HEADER_PROBE_BYTES = 1 << 16
# Header errors show the file's own text, which may not be a CSV at all (/etc/passwd, an HTTP
# body, a key file): at most this many names, each cut to this many characters (review D7).
SHOWN_NAMES = 5
SHOWN_NAME_CHARS = 40


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


def _listed(items: list[str] | list[int]) -> str:
    """The first few items, names cut short and shown with ``repr`` (a quote or a newline
    stays visible), and how many more there are."""
    shown = [
        repr(i[:SHOWN_NAME_CHARS]) + ("..." if len(i) > SHOWN_NAME_CHARS else "")
        if isinstance(i, str)
        else str(i)
        for i in items[:SHOWN_NAMES]
    ]
    more = len(items) - SHOWN_NAMES
    return "[" + ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "") + "]"


def _expected(contract: Contract) -> str:
    """The header the contract wants, as messages show it (a mapped column with both names)."""
    if all(c.header is None and c.required for c in contract.columns):
        return f"Expected columns: {contract.column_names}"
    shown = [c.label + ("" if c.required else " (optional)") for c in contract.columns]
    return "Expected columns: [" + ", ".join(shown) + "]"


def check_header(
    header: list[str], contract: Contract, uri: str, *, where: str = "line 1 (header)"
) -> None:
    """The CSV's columns must be exactly the contract's header names (any order); a column the
    contract marks ``required: false`` may be absent.

    ``where`` names the header in messages: a typed source (Parquet, a BigQuery table) passes
    its column names with ``where="columns"``.

    A column's header name is its ``header`` when the contract gives one (``Units Sold`` for
    ``sales``), else its name. Names are compared after trimming (``parse_csv_header``) and
    case-sensitively: a file whose ``Units sold`` differs only in case is refused with a hint,
    since a guess at what a column is would be worse than a clear error.
    """
    expected = _expected(contract)
    if len(header) < 2 and where == "line 1 (header)":
        # Every contract has at least a date and a target. A line without a comma is not a
        # CSV header, and quoting it would print the first line of whatever file this is.
        raise DataError(
            f"{uri}: line 1: the first line has no comma-separated header "
            f"(is this the right file?). {expected}"
        )
    problems = []
    blanks = [i + 1 for i, h in enumerate(header) if not h]
    if blanks:
        problems.append(f"empty column name at position(s) {_listed(blanks)}")
    # Counter: header.count per name is quadratic on a 64 KiB line of commas.
    counts = Counter(header)
    dupes = sorted(h for h, n in counts.items() if h and n > 1)
    if dupes:
        problems.append(f"duplicate columns {_listed(dupes)}")
    # A column the contract marks ``required: false`` may be left out (its values are missing).
    missing = [c for c in contract.columns if c.required and c.csv_header not in counts]
    if missing:
        problems.append("missing columns [" + ", ".join(c.label for c in missing[:SHOWN_NAMES]))
        more = len(missing) - SHOWN_NAMES
        problems[-1] += (f", ... ({more} more)" if more > 0 else "") + "]"
    known = set(contract.csv_headers)
    unknown = [h for h in header if h and h not in known]
    if unknown:
        problems.append(f"unknown columns {_listed(unknown)}")
        absent = [c for c in contract.columns if c.csv_header not in counts]
        by_case = {c.csv_header.lower(): c for c in absent}
        near = [(h, by_case[h.lower()]) for h in unknown if h.lower() in by_case]
        if near:
            problems.append(
                "names are case-sensitive: "
                + ", ".join(f"{_listed([h])[1:-1]} is not {c.label}" for h, c in near[:SHOWN_NAMES])
            )
    if problems:
        raise DataError(
            f"{uri}: {where} does not match the {contract.name!r} contract: "
            + "; ".join(problems)
            + f". {expected}"
        )

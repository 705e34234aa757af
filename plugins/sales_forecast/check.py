"""Check a contract and a CSV in seconds, without the DAG: ``python -m sales_forecast.check``.

``--dataset`` is a contract name (shipped, or in ``SF_CONTRACTS_DIR``) or, since this is a local
tool run by the machine's own user, a contract file's path; ``--input`` a local CSV. The file
goes through the pipeline's own rules, not a copy of them: the header check
(:func:`sales_forecast.csv_checks.check_header`), the local loader and ``validate.sql`` and
``quarantine.sql`` on a throw-away DuckDB file, and the run's reject limits
(:mod:`sales_forecast.decisions`). It prints what a run would accept and quarantine, and why.

Exit status: 0 when a run on this file would get past validation, 2 when it would fail (the
reason is printed), like the trainer's "a mistake the caller can fix".
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sales_forecast import decisions
from sales_forecast.config import Settings, get_settings
from sales_forecast.contract import (
    BUILTIN_CONTRACTS,
    CONTRACT_SUFFIXES,
    load_contract,
    load_contract_file,
)
from sales_forecast.errors import DataError
from sales_forecast.platforms.local import DuckDBWarehouse, LocalStore
from sales_forecast.sources import SourceKind, row_word, source_kind
from sales_forecast.sqlrender import TableNames, render_sql
from sales_forecast.steps import load_input
from sf_contract.constants import DATE_FORMAT, USER_ERROR_EXIT
from sf_contract.schema import Contract, ContractError

__all__ = ["CheckResult", "check_file", "main", "reason_group", "resolve_contract"]

RUN_ID = "check"
# How many rejected rows are listed one by one (the grouped counts cover all of them).
FIRST_REJECTS = 10


@dataclass
class CheckResult:
    """What a run would make of the file; ``failure`` is None when it would proceed."""

    contract: Contract
    input_path: str
    cutoff: date
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    first_rejects: list[dict[str, Any]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    series: int = 0
    first_date: date | None = None
    last_date: date | None = None
    missing_days: int = 0
    failure: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def proceeds(self) -> bool:
        return self.failure is None


def resolve_contract(dataset: str, settings: Settings) -> tuple[Contract, list[str]]:
    """The contract a ``--dataset`` value means, and notes on running it as a DAG dataset.

    A value that looks like a path (a contract suffix or a ``/``) is read as a file; anything
    else is a name, resolved exactly as a run resolves its ``dataset`` param.
    """
    notes: list[str] = []
    if dataset.endswith(CONTRACT_SUFFIXES) or "/" in dataset:
        contract = load_contract_file(dataset)
        path = Path(dataset).expanduser()
        if contract.name in BUILTIN_CONTRACTS:
            notes.append(
                f"the contract is named {contract.name!r}, a shipped contract: a run with "
                f'{{"dataset": "{contract.name}"}} uses the shipped one, not this file; '
                "give yours another name"
            )
        elif path.stem != contract.name:
            notes.append(
                f"a run finds this contract as {contract.name}.yaml in SF_CONTRACTS_DIR (the "
                f"file's name must be the contract's name, not {path.name!r})"
            )
        else:
            notes.append(
                f'to run it: put {path.name} in SF_CONTRACTS_DIR and trigger with {{"dataset": '
                f'"{contract.name}"}}'
            )
    else:
        contract = load_contract(dataset.strip(), settings)
    # Table and model names are built from the contract's name now, not at the first SQL
    # statement of a run: a name that is too long fails here with the name to change.
    suffix = settings.namespace(contract.name)
    try:
        TableNames(settings.dataset + suffix)
    except ContractError as exc:
        raise ContractError(f"contract {contract.name!r}: its warehouse dataset: {exc}") from None
    return contract, notes


# A reject reason without the row's own values, so that rows with the same problem count as one.
_QUOTED = re.compile(r'"[^"]*"')
_AFTER_CUTOFF = re.compile(r"^(\w+): .* is after the cut-off of this run, .*$")
_MALFORMED = re.compile(r"^(malformed CSV line \([^)]*\)).*$")
_NUMBER = re.compile(r"\b\d+\b")
_RUN_TABLE_HINT = re.compile(
    r" See table rejected_rows \(run_id='check'\)\.|"
    r" \(see table rejected_rows, run_id='check'\)"
)


def reason_group(reason: str) -> list[str]:
    """The problems of one rejected row (it may have several), each with its values left out."""
    text = _QUOTED.sub('"…"', reason)
    malformed = _MALFORMED.match(text)
    if malformed:
        return [malformed.group(1)]
    out = []
    for part in text.split("; "):
        part = _AFTER_CUTOFF.sub(r"\1: a date after the cut-off of this run", part)
        out.append(_NUMBER.sub("N", part) if "duplicate" in part else part)
    return out


def _stats(wh: DuckDBWarehouse, contract: Contract) -> dict[str, Any]:
    """Series, date range and days without a row among the accepted rows."""
    keys = [f"`{k}`" for k in contract.series_keys]
    d = f"`{contract.date_column}`"
    group = f"GROUP BY {', '.join(keys)}" if keys else ""
    (row,) = wh.query(
        f"WITH per_series AS ("
        f"  SELECT MIN({d}) AS first_day, COUNT(DISTINCT {d}) AS days"
        f"  FROM {wh.tables.staging_checked} WHERE reject_reason IS NULL {group}"
        f"), span AS ("
        f"  SELECT MAX({d}) AS last_day, MIN({d}) AS first_day"
        f"  FROM {wh.tables.staging_checked} WHERE reject_reason IS NULL"
        f") "
        f"SELECT COUNT(*) AS series, ANY_VALUE(span.first_day) AS first_date, "
        f"ANY_VALUE(span.last_day) AS last_date, "
        # The features step lays every series out from its first day to the data's last day.
        f"SUM(DATE_DIFF(span.last_day, per_series.first_day, DAY) + 1 - per_series.days) "
        f"AS missing_days "
        f"FROM per_series CROSS JOIN span"
    )
    return row


def check_file(
    contract: Contract, input_path: str, settings: Settings, cutoff: date
) -> CheckResult:
    """Run the pipeline's header check and validation on ``input_path`` in a temp warehouse."""
    result = CheckResult(contract=contract, input_path=input_path, cutoff=cutoff)
    path = Path(input_path).expanduser()
    if path.is_dir() and not input_path.endswith("/"):
        input_path = result.input_path = input_path + "/"  # a folder of Parquet files
    kind = source_kind(input_path)
    if kind is SourceKind.BIGQUERY:
        result.failure = f"{input_path}: the check reads local files only (CSV or Parquet)"
        return result
    if not path.exists() or (kind is SourceKind.CSV and not path.is_file()):
        result.failure = f"{input_path}: input file not found"
        return result
    with tempfile.TemporaryDirectory(prefix="sf-check-") as tmp:
        wh = DuckDBWarehouse(
            Path(tmp) / "check.duckdb",
            settings.dataset + settings.namespace(contract.name),
            settings.duckdb_memory_limit,
            run_id=RUN_ID,
        )
        try:
            wh.run_script("create_tables", contract)
            # ~ as the shell would read it; the rest of the name as given (messages quote it).
            load_input(os.path.expanduser(input_path), contract, LocalStore(), wh)
        except DataError as exc:
            result.failure = str(exc)
            return result
        wh.run_script("validate", contract, cutoff=cutoff)
        wh.run_script("quarantine", contract, run_id=RUN_ID, source_file=input_path)
        (counts,) = wh.query(
            f"SELECT COUNT(*) AS staged, COUNTIF(reject_reason IS NOT NULL) AS rejected "
            f"FROM {wh.tables.staging_checked}"
        )
        (malformed,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.staging_malformed}")
        staged, rejected = int(counts["staged"]), int(counts["rejected"])
        result.rows = staged + int(malformed["n"])
        result.rejected = rejected + int(malformed["n"])
        result.accepted = result.rows - result.rejected
        result.first_rejects = wh.query(
            f"SELECT source_row, reason FROM {wh.tables.rejected_rows} "
            f"ORDER BY source_row LIMIT {FIRST_REJECTS}"
        )
        for r in wh.query(
            f"SELECT reason, COUNT(*) AS n FROM {wh.tables.rejected_rows} GROUP BY reason"
        ):
            for group in reason_group(str(r["reason"])):
                result.reasons[group] += int(r["n"])
        if result.accepted:
            stats = _stats(wh, contract)
            result.series = int(stats["series"])
            result.first_date, result.last_date = stats["first_date"], stats["last_date"]
            result.missing_days = int(stats["missing_days"] or 0)
        try:
            # The run's own decisions, with the run's own limits.
            decisions.validation_outcome(
                staged=staged,
                rejected=rejected,
                malformed=int(malformed["n"]),
                examples=result.first_rejects[:5],
                input_uri=input_path,
                run_id=RUN_ID,
                max_reject_fraction=settings.max_reject_fraction,
            )
            if result.rejected:
                decisions.series_reject_outcome(
                    wh.query(render_sql("series_rejects", contract, wh.tables)),
                    max_fraction=settings.max_series_reject_fraction,
                    input_uri=input_path,
                    run_id=RUN_ID,
                )
        except DataError as exc:
            # The run's wording points at its rejected_rows table; this one is gone already.
            result.failure = _RUN_TABLE_HINT.sub("", str(exc))
    return result


def _contract_summary(contract: Contract, out: TextIO) -> None:
    keys = ", ".join(contract.series_keys) or "none (one series)"
    print(f"Contract {contract.name!r} ({contract.source})", file=out)
    if contract.description:
        print(f"  {contract.description}", file=out)
    print(
        f"  date: {contract.date_column}, target: {contract.target}, series keys: {keys}; "
        f"dates as {contract.date_format or DATE_FORMAT}",
        file=out,
    )
    rows = [("column", "type", "role", "header in the file", "future_fill")]
    for c in contract.columns:
        rows.append((c.name, c.type, c.role, c.csv_header, c.future_fill or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(4)] + [r[4]]
        print("    " + "  ".join(cells).rstrip(), file=out)


def _report(result: CheckResult, settings: Settings, out: TextIO) -> None:
    c = result.contract
    print(f"\nInput {result.input_path}", file=out)
    print(
        f"  cut-off {result.cutoff}: rows dated after it are quarantined, as in a run",
        file=out,
    )
    if result.rows:
        share = result.rejected / result.rows
        print(
            f"  rows read: {result.rows}, accepted: {result.accepted}, quarantined: "
            f"{result.rejected} ({share:.1%}; a run fails above "
            f"{settings.max_reject_fraction:.0%})",
            file=out,
        )
    if result.reasons:
        print("  quarantined by reason (a row may have several):", file=out)
        for reason, n in result.reasons.most_common():
            print(f"    {n:>7}  {reason}", file=out)
        print(f"  first {len(result.first_rejects)} quarantined rows:", file=out)
        for r in result.first_rejects:
            print(f"    {row_word(result.input_path)} {r['source_row']}: {r['reason']}", file=out)
        mapped = [col for col in c.columns if col.header is not None]
        if mapped:
            print(
                "  (reasons name the contract's columns: "
                + ", ".join(f"{col.name} = {col.header!r}" for col in mapped)
                + ")",
                file=out,
            )
    if result.accepted:
        span = (result.last_date - result.first_date).days + 1  # type: ignore[operator]
        print(
            f"  series: {result.series}, dates {result.first_date} .. {result.last_date} "
            f"({span} days)",
            file=out,
        )
        if result.missing_days:
            print(
                f"  days without an accepted row: {result.missing_days}; a run reads them as "
                "days without sales (0), or as unknown when the day's row was quarantined",
                file=out,
            )


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    import argparse

    stream = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m sales_forecast.check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="a contract name (shipped or in SF_CONTRACTS_DIR) or a contract file's path "
        "(default: the default contract)",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="the file to check: a local CSV, a Parquet file or a folder of Parquet files",
    )
    parser.add_argument(
        "--cutoff",
        default=None,
        help="the run's cut-off, YYYY-MM-DD (default: yesterday, as a run triggered today)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    settings = get_settings()
    try:
        cutoff = (
            date.fromisoformat(args.cutoff)
            if args.cutoff
            else datetime.now(UTC).date() - timedelta(days=1)
        )
    except ValueError:
        parser.error(f"--cutoff {args.cutoff!r} is not a YYYY-MM-DD date")
    try:
        contract, notes = resolve_contract(args.dataset or settings.default_dataset, settings)
    except ContractError as exc:
        print(f"The contract is invalid: {exc}", file=stream)
        print("\nA run would FAIL at once (a contract error is never retried).", file=stream)
        return USER_ERROR_EXIT
    _contract_summary(contract, stream)
    if settings.platform == "local":
        from sales_forecast.run_context import check_input_uri

        try:
            check_input_uri(args.input, settings)
        except DataError as exc:
            notes.append(f"a run could not read the file where it is: {exc}")
    result = check_file(contract, args.input, settings, cutoff)
    result.notes = notes
    _report(result, settings, stream)
    for note in notes:
        print(f"\nNote: {note}", file=stream)
    elapsed = time.monotonic() - started
    if result.failure is not None:
        print(f"\nA run would FAIL: {result.failure}", file=stream)
        print(f"(checked in {elapsed:.1f} s)", file=stream)
        return USER_ERROR_EXIT
    print(
        f"\nA run would proceed: {result.accepted} rows would be used"
        + (f", {result.rejected} quarantined in rejected_rows" if result.rejected else "")
        + f". (checked in {elapsed:.1f} s)",
        file=stream,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

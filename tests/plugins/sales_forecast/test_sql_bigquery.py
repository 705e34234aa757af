"""Every rendered ``.sql`` statement is BigQuery SQL, checked with sqlglot's BigQuery dialect.

The emulator tests (tests/gcp) and the local platform run the SQL through sqlglot into DuckDB,
which happily takes DuckDB-only constructs; these checks do not. For every shipped contract and
every value of every render switch, each statement as :class:`BigQueryWarehouse` sends it must:

1. parse with the BigQuery dialect at ``ErrorLevel.RAISE`` into one real statement (not the
   ``Command`` fallback sqlglot uses for what it cannot parse);
2. round-trip: generating BigQuery SQL from it (unsupported constructs raise) and parsing that
   again gives the same tree;
3. call only BigQuery functions (:data:`BIGQUERY_FUNCTIONS`, BigQuery-only ones included):
   sqlglot keeps an unknown name such as DuckDB's ``list_value`` as an anonymous function;
4. lose no word in the round trip: sqlglot rewrites what is not BigQuery's own spelling
   (``x::INT`` into ``CAST(x AS INT64)``, ``EXCLUDE`` into ``EXCEPT``, ``ILIKE`` into
   ``LOWER() LIKE LOWER()``, ``TRY_CAST`` into ``SAFE_CAST``, ``VARCHAR`` into ``STRING``), so a
   word of the source missing from the regenerated text is a foreign construct;
5. use none of the few foreign constructs sqlglot's BigQuery parser keeps as written.

What this cannot show: that BigQuery accepts the statement with these tables and types, the
arguments' order and types, MERGE cardinality, quotas. That is what ``scripts/gcp_smoke.sh``'s
zero-cost dry run on a real project is for (docs/gcp.md, "Smoke test on your project").
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlglot
from sales_forecast.contract import BUILTIN_CONTRACTS, load_contract
from sales_forecast.platforms.gcp.warehouse import BigQueryWarehouse, split_statements_verbatim
from sales_forecast.sqlrender import SQL_DIR, render_sql
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel
from sqlglot.tokens import TokenType

from tests._support.sql_inputs import script_inputs

SCRIPTS = sorted(p.stem for p in SQL_DIR.glob("*.sql") if not p.name.startswith("_"))
# The template switches (``{% set x = x | default(...) %}``) and the values the code passes.
SWITCHES: dict[str, tuple[bool, ...]] = {"incoming": (True, False), "bigquery": (True, False)}
_SWITCH_RE = re.compile(r"{%-?\s*set\s+(\w+)\s*=\s*\1\s*\|\s*default\(")

# Functions of BigQuery's GoogleSQL reference (https://cloud.google.com/bigquery/docs/reference/
# standard-sql/functions-all) that the SQL uses or is likely to. A name missing here fails the
# check until someone confirms it in that reference: never add a DuckDB-only name.
BIGQUERY_FUNCTIONS = frozenset(
    """
    ABS ANY_VALUE APPROX_COUNT_DISTINCT ARRAY ARRAY_AGG ARRAY_CONCAT ARRAY_LENGTH ARRAY_REVERSE
    ARRAY_TO_STRING AVG BIT_AND BIT_OR BIT_XOR BYTE_LENGTH CAST CEIL CEILING CHAR_LENGTH COALESCE
    CONCAT CONTAINS_SUBSTR CORR COUNT COUNTIF CUME_DIST CURRENT_DATE CURRENT_DATETIME
    CURRENT_TIMESTAMP DATE DATE_ADD DATE_DIFF DATE_FROM_UNIX_DATE DATE_SUB DATE_TRUNC DATETIME
    DENSE_RANK DIV ENDS_WITH EXP EXTRACT FARM_FINGERPRINT FIRST_VALUE FLOOR FORMAT FORMAT_DATE
    FORMAT_DATETIME FORMAT_TIMESTAMP GENERATE_ARRAY GENERATE_DATE_ARRAY GENERATE_UUID GREATEST
    IEEE_DIVIDE IF IFNULL INSTR IS_INF IS_NAN JSON_EXTRACT_SCALAR JSON_QUERY JSON_VALUE LAG
    LAST_DAY LAST_VALUE LEAD LEAST LENGTH LN LOG LOG10 LOGICAL_AND LOGICAL_OR LOWER LPAD LTRIM MAX
    MIN MOD NTH_VALUE NTILE NULLIF PARSE_DATE PARSE_DATETIME PARSE_TIMESTAMP PERCENT_RANK POW
    POWER RAND RANK REGEXP_CONTAINS REGEXP_EXTRACT REGEXP_REPLACE REPEAT REPLACE REVERSE ROUND
    ROW_NUMBER RPAD RTRIM SAFE_CAST SAFE_DIVIDE SHA256 SIGN SPLIT SQRT STARTS_WITH STDDEV
    STDDEV_POP STDDEV_SAMP STRING_AGG STRPOS STRUCT SUBSTR SUBSTRING SUM TIMESTAMP TIMESTAMP_ADD
    TIMESTAMP_DIFF TIMESTAMP_SUB TIMESTAMP_TRUNC TO_HEX TO_JSON TO_JSON_STRING TRIM TRUNC
    UNIX_DATE UNNEST UPPER VAR_POP VAR_SAMP VARIANCE
    """.split()
)
# Words a keyword or punctuation, not a call, when a "(" follows.
_NOT_CALLS = frozenset(
    "AS AND OR NOT IN EXISTS OVER INSERT USING FROM EXCEPT ON VALUES WHERE SELECT WITH JOIN "
    "UNION INTERSECT ALL DISTINCT BY WINDOW PARTITION TABLE INTO".split()
)
# Valid BigQuery that sqlglot regenerates in another valid spelling: (written, regenerated).
_SAME_MEANING = {"!=": "<>", "STRPOS": "INSTR"}
# DuckDB statements sqlglot parses in any dialect (BigQuery has none of them).
_FOREIGN_STATEMENTS = frozenset({"Pragma", "Copy", "Attach", "Detach", "Install"})
_LITERALS = {TokenType.STRING, TokenType.RAW_STRING, TokenType.NUMBER, TokenType.IDENTIFIER}

_BQ = Dialect.get_or_raise("bigquery")


def _foreign_nodes(tree: exp.Expression) -> Iterator[str]:
    """What sqlglot's BigQuery parser keeps as written though BigQuery has no such syntax."""
    for node in tree.walk():
        if type(node).__name__ in _FOREIGN_STATEMENTS:
            yield type(node).__name__.upper()
        elif isinstance(node, exp.SimilarTo):
            yield "SIMILAR TO"
        elif isinstance(node, exp.Insert) and node.args.get("alternative"):
            yield f"INSERT OR {node.args['alternative']}"
        elif isinstance(node, exp.Join) and node.method.upper() == "NATURAL":
            yield "NATURAL JOIN"


def _same_tree(tree: exp.Expression) -> exp.Expression:
    """The tree with raw strings as the escaped literals sqlglot regenerates them as."""

    def plain(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.RawString):
            return exp.Literal.string(node.this)
        return node

    return tree.copy().transform(plain)


def _calls(statement: str) -> list[str]:
    """The names the statement calls as functions, as written (``SAFE.`` prefixes dropped)."""
    tokens = _BQ.tokenize(statement)
    names = []
    for tok, nxt in itertools.pairwise(tokens):
        if nxt.token_type != TokenType.L_PAREN or tok.token_type in _LITERALS:
            continue
        name = tok.text.upper()
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*", name) and name not in _NOT_CALLS:
            names.append(name)
    return names


def _words(sql: str) -> Counter[str]:
    return Counter(t.text.upper() for t in _BQ.tokenize(sql) if t.token_type not in _LITERALS)


def bigquery_problems(statement: str) -> list[str]:
    """Why ``statement`` is not BigQuery SQL (empty when the five checks above pass)."""
    try:
        trees = sqlglot.parse(statement, read="bigquery", error_level=ErrorLevel.RAISE)
    except sqlglot.errors.ParseError as exc:
        return [f"does not parse as BigQuery: {exc}"]
    if len(trees) != 1 or trees[0] is None:
        return [f"is {len(trees)} statements, not one"]
    (tree,) = trees
    if isinstance(tree, exp.Command):
        return [f"is not a statement sqlglot's BigQuery dialect knows: {str(tree)[:60]!r}"]
    try:
        again = tree.sql("bigquery", unsupported_level=ErrorLevel.RAISE)
        reparsed = sqlglot.parse_one(again, read="bigquery", error_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        return [f"does not round-trip through BigQuery: {exc}"]
    problems = []
    if _same_tree(reparsed) != _same_tree(tree):
        problems.append("the BigQuery round trip changes its structure")
    unknown = sorted(set(_calls(statement)) - BIGQUERY_FUNCTIONS)
    if unknown:
        problems.append(f"calls functions that are not BigQuery's: {unknown}")
    lost, gained = _words(statement) - _words(again), _words(again) - _words(statement)
    for word, alternative in _SAME_MEANING.items():
        matched = min(lost[word], gained[alternative])
        lost[word] -= matched
    lost = +lost
    if lost:
        problems.append(f"sqlglot rewrote {sorted(lost)} into BigQuery's spelling: {again[:200]}")
    problems += [f"uses {what}, which BigQuery does not have" for what in _foreign_nodes(tree)]
    return problems


def _switch_names(text: str) -> set[str]:
    return set(_SWITCH_RE.findall(text))


def renderings() -> Iterator[tuple[str, str, dict[str, bool]]]:
    """(contract, script, render switches) for every combination the SQL distinguishes."""
    for contract, script in itertools.product(BUILTIN_CONTRACTS, SCRIPTS):
        used = sorted(_switch_names((SQL_DIR / f"{script}.sql").read_text()))
        for values in itertools.product(*(SWITCHES[name] for name in used)):
            yield contract, script, dict(zip(used, values, strict=True))


def warehouse() -> BigQueryWarehouse:
    return BigQueryWarehouse(
        conn_id="google_cloud_default",
        project="my-project",
        location="EU",
        dataset="sales_forecast",
        run_id="manual__2025-01-01T00:00:00+00:00",
    )


def test_every_render_switch_is_checked_with_each_value():
    used = set()
    for path in SQL_DIR.glob("*.sql"):
        used |= _switch_names(path.read_text())
    assert used == set(SWITCHES)


@pytest.mark.parametrize(
    ("contract", "script", "switches"),
    list(renderings()),
    ids=lambda v: ",".join(f"{k}={int(x)}" for k, x in v.items()) if isinstance(v, dict) else v,
)
def test_every_rendered_statement_is_bigquery_sql(contract, script, switches):
    wh = warehouse()
    # The text the gcp platform sends; with bigquery off, the text the local platform
    # transpiles (it is written in BigQuery's dialect too).
    c = load_contract(contract)
    for inputs in script_inputs(script, c):
        render = {**switches, **inputs}
        sql = (
            wh.script(script, c, render)
            if switches.get("bigquery", True)
            else render_sql(script, c, wh.tables, render)
        )
        _check_bigquery_script(sql)


def _check_bigquery_script(sql: str) -> None:
    statements = split_statements_verbatim(sql)
    assert statements
    assert len(sqlglot.parse(sql, read="bigquery", error_level=ErrorLevel.RAISE)) == len(statements)
    problems = {i: bigquery_problems(s) for i, s in enumerate(statements, start=1)}
    assert {i: p for i, p in problems.items() if p} == {}


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("SELECT x::INT64 FROM t", "rewrote ['::']"),
        ("SELECT * EXCLUDE (a) FROM t", "rewrote ['EXCLUDE']"),
        ("SELECT a FROM t WHERE a ILIKE 'x%'", "rewrote ['ILIKE']"),
        ("SELECT TRY_CAST(a AS INT64) FROM t", "rewrote ['TRY_CAST']"),
        ("CREATE TABLE t (a VARCHAR)", "rewrote ['VARCHAR']"),
        ("SELECT CAST(a AS DOUBLE) FROM t", "rewrote ['DOUBLE']"),
        ("SELECT {'a': 1} AS s", "rewrote [':', '{', '}']"),
        ("SELECT a FROM t USING SAMPLE 10%", "rewrote ['%', 'SAMPLE', 'USING']"),
        ("SELECT COUNT(*) FILTER (WHERE a) FROM t", "rewrote"),
        ("SELECT DISTINCT ON (a) a FROM t", "rewrote ['DISTINCT', 'ON']"),
        ("SELECT a FROM t ORDER BY ALL", "rewrote ['ALL']"),
        ("SELECT GENERATE_SERIES(1, 3)", "rewrote ['GENERATE_SERIES']"),
        ("SELECT x -> 'a' FROM t", "rewrote ['->']"),
        ("SELECT strftime(d, '%Y') FROM t", "not BigQuery's: ['STRFTIME']"),
        ("SELECT list_value(1, 2)", "not BigQuery's: ['LIST_VALUE']"),
        ("SELECT * FROM read_csv('x.csv')", "not BigQuery's: ['READ_CSV']"),
        ("SELECT epoch(d) FROM t", "not BigQuery's: ['EPOCH']"),
        ("INSERT OR REPLACE INTO t SELECT 1", "INSERT OR REPLACE"),
        ("SELECT a FROM t WHERE a SIMILAR TO 'x'", "SIMILAR TO"),
        ("SELECT a FROM t NATURAL JOIN u", "NATURAL JOIN"),
        ("PRAGMA threads = 4", "uses PRAGMA"),
        ("COPY t TO 'out.csv'", "uses COPY"),
        ("LOAD httpfs", "not a statement"),
        ("SELECT 2 ** 3", "does not parse"),
    ],
)
def test_duckdb_only_constructs_are_caught(statement, why):
    problems = bigquery_problems(statement)
    assert problems and why in " ".join(problems), problems


def test_a_duckdb_construct_in_a_real_statement_is_caught():
    """The real features statement passes; with DuckDB's strftime in place of FORMAT_DATE, or a
    ``::`` cast, it does not."""
    (create,) = split_statements_verbatim(
        render_sql("features", load_contract("takeaway"), warehouse().tables, {"incoming": False})
    )
    assert "FORMAT_DATE('%u', `date`)" in create and bigquery_problems(create) == []
    duck = create.replace("FORMAT_DATE('%u', `date`)", "strftime(`date`, '%u')")
    assert bigquery_problems(duck) == ["calls functions that are not BigQuery's: ['STRFTIME']"]
    cast = create.replace("CAST(IF(", "(IF(").replace("AS FLOAT64) AS", ")::FLOAT64 AS", 1)
    assert any("rewrote ['::']" in p for p in bigquery_problems(cast))


def test_bigquery_only_functions_and_spellings_pass():
    statement = (
        "SELECT SAFE_CAST(TRIM(a) AS INT64) AS n, REGEXP_CONTAINS(a, r'^\\d+$') AS ok, "
        "COUNTIF(a != '') AS c, STRPOS(a, '|') AS p, TO_JSON_STRING(STRUCT(a AS x)) AS j, "
        "FORMAT_DATE('%u', d) AS w, ARRAY_TO_STRING([a, b], '|') AS k, IS_NAN(f) AS nan "
        "FROM `p.d.t`, UNNEST(GENERATE_DATE_ARRAY(DATE '2024-01-01', DATE '2024-01-31')) AS d "
        "WHERE d <= @cutoff GROUP BY a, b, d, f"
    )
    assert bigquery_problems(statement) == []

"""Helpers shared by the demo-data generators: calendars, AR noise and exact CSV formatting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TextIO

import numpy as np
import pandas as pd


def easter_sunday(year: int) -> dt.date:
    """Return Western (Gregorian) Easter Sunday of ``year`` (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """Return the ``n``-th ``weekday`` (Mon=0) of a month, e.g. the 4th Thursday of November."""
    first = dt.date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def parse_day(value: str | dt.date | pd.Timestamp) -> pd.Timestamp:
    """Parse a date-like value to a midnight ``pd.Timestamp`` (time of day is dropped)."""
    return pd.Timestamp(value).normalize()


def ar1(innovations: np.ndarray, phi: float, sigma: float) -> np.ndarray:
    """Filter standard-normal innovations into a stationary AR(1) series with marginal sd ``sigma``.

    Weather anomalies persist for days; a plain loop is fine because series are only a few
    thousand days long and the loop runs once per store, not per row.
    """
    out = np.empty(len(innovations), dtype=np.float64)
    if len(innovations) == 0:
        return out
    innov_sd = sigma * np.sqrt(1.0 - phi * phi)
    # Start from the stationary distribution so the first days are not artificially calm.
    out[0] = sigma * innovations[0]
    for t in range(1, len(innovations)):
        out[t] = phi * out[t - 1] + innov_sd * innovations[t]
    return out


Piece = tuple[list[str], np.ndarray]
"""Unique labels and the code of every row; a CSV field is one or more pieces side by side."""


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, codes = np.unique(values, return_inverse=True)
    return uniq, codes.ravel()


def _fixed_label(v: int, decimals: int) -> str:
    sign = "-" if v < 0 else ""
    whole, frac = divmod(abs(v), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals > 0 else f"{sign}{whole}"


# Above this many distinct values a number is formatted as separate sign/whole/fraction pieces.
_MAX_WHOLE_LABELS = 20_000


def _fixed_pieces(values: np.ndarray, decimals: int) -> list[Piece]:
    """Fixed-decimal text of ``values``.

    Goes through integers so the text never depends on float repr and never reads ``-0.0``.
    Prices and temperatures repeat a lot and get one label per distinct value; continuous values
    (the truth column) are split into sign, whole part, point and zero-padded fraction so the
    Python-side formatting stays bounded by the few distinct whole parts and ``10**decimals``.
    """
    scale = 10**decimals
    scaled = np.rint(np.asarray(values, dtype=np.float64).ravel() * scale).astype(np.int64)
    uniq, codes = _codes(scaled)
    if len(uniq) <= _MAX_WHOLE_LABELS or decimals == 0:
        return [([_fixed_label(v, decimals) for v in uniq.tolist()], codes)]
    whole, frac = np.divmod(np.abs(scaled), scale)
    uniq_whole, whole_codes = _codes(whole)
    uniq_frac, frac_codes = _codes(frac)
    return [
        (["", "-"], (scaled < 0).astype(np.int64)),
        ([f"{v}." for v in uniq_whole.tolist()], whole_codes),
        ([f"{v:0{decimals}d}" for v in uniq_frac.tolist()], frac_codes),
    ]


def _csv_quote(text: str) -> str:
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _column_pieces(col: pd.Series, name: str, decimals: Mapping[str, int]) -> list[Piece]:
    """Encode one column as the pieces of its CSV text."""
    values = col.to_numpy()
    if name in decimals:
        return _fixed_pieces(values, decimals[name])
    if pd.api.types.is_datetime64_any_dtype(col):
        uniq, codes = _codes(values.astype("datetime64[D]"))
        return [([str(d) for d in uniq], codes)]
    if pd.api.types.is_bool_dtype(col):
        return [(["false", "true"], values.astype(np.int64))]
    if pd.api.types.is_integer_dtype(col):
        uniq, codes = _codes(values)
        return [([str(v) for v in uniq.tolist()], codes)]
    if pd.api.types.is_float_dtype(col):
        raise ValueError(f"float column {name!r} needs an explicit number of decimals")
    codes, uniq = pd.factorize(col, use_na_sentinel=False)
    return [([_csv_quote("" if pd.isna(v) else str(v)) for v in uniq], codes)]


def _label_matrix(labels: list[str], codes: np.ndarray) -> np.ndarray:
    """Rows x max-width uint8 matrix of UTF-8 labels, NUL-padded on the right."""
    encoded = np.array([lab.encode("utf-8") for lab in labels] or [b""], dtype=bytes)
    width = max(encoded.dtype.itemsize, 1)
    encoded = encoded.astype(f"S{width}")
    return encoded.view(np.uint8).reshape(len(encoded), width)[codes]


_ROWS_PER_SLICE = 1_000_000


def write_frame_csv(
    frame: pd.DataFrame, handle: TextIO, *, decimals: Mapping[str, int], header: bool
) -> None:
    """Append ``frame`` to an open text handle in the bundled-CSV format.

    Dates become ISO days, bools ``true``/``false``, the float columns named in ``decimals`` get a
    fixed number of decimals, and lines end with ``\\n`` so files are byte-identical on every OS.
    Every writer goes through here, so in-memory and streamed output cannot drift apart.

    Rows are assembled as a NUL-padded byte matrix and the padding is dropped in one pass (labels
    never contain NUL). Only each column's distinct values are formatted in Python, which makes
    this several times faster than ``DataFrame.to_csv`` on multi-million-row panels.
    """
    if header:
        handle.write(",".join(_csv_quote(str(c)) for c in frame.columns) + "\n")
    comma = np.full((1, 1), ord(","), dtype=np.uint8)
    newline = np.full((1, 1), ord("\n"), dtype=np.uint8)
    for lo in range(0, len(frame), _ROWS_PER_SLICE):
        part = frame.iloc[lo : lo + _ROWS_PER_SLICE]
        n = len(part)
        pieces: list[np.ndarray] = []
        for j, name in enumerate(part.columns):
            if j:
                pieces.append(np.broadcast_to(comma, (n, 1)))
            pieces.extend(_label_matrix(*p) for p in _column_pieces(part[name], name, decimals))
        pieces.append(np.broadcast_to(newline, (n, 1)))
        flat = np.concatenate(pieces, axis=1).ravel()
        handle.write(flat[flat != 0].tobytes().decode("utf-8"))

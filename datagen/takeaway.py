"""Seeded single-series takeaway dataset (the predecessor project's schema).

One Delhi restaurant's daily takeaway order total with observed weather, Indian public holidays,
school breaks and a cricket calendar (IPL and India internationals). Everything comes from one
``numpy.random.Generator(seed)``: weather, noise and each year's fixtures use their own spawned
streams and draw history days before future days, so the history does not change when only
``future_days`` changes.

The daily total is a compound draw: orders ~ negative binomial with mean ``mu_orders`` and each
order value ~ gamma with mean ``ticket``, so ``Total`` has mean ``expected = mu_orders * ticket``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datagen._common import ar1, easter_sunday, parse_day, write_frame_csv

TAKEAWAY_COLUMNS: list[str] = [
    "date",
    "Total",
    "tavg",
    "tmin",
    "tmax",
    "prcp",
    "wspd",
    "pres",
    "is_holiday",
    "holiday_name",
    "is_school_break",
    "dinner_impact_score",
    "importance_score",
    "is_evening",
    "is_weekend",
    "is_home",
    "is_delhi",
    "is_t20i",
    "is_cricket_day",
]
"""CSV columns of the takeaway history file, in order (the ``takeaway`` contract)."""

WEATHER_COLUMNS: list[str] = ["tavg", "tmin", "tmax", "prcp", "wspd", "pres"]
TAKEAWAY_FUTURE_COLUMNS: list[str] = [
    c for c in TAKEAWAY_COLUMNS if c != "Total" and c not in WEATHER_COLUMNS
]
"""Columns of the future file: the contract minus the target and the observed-only weather."""

TAKEAWAY_ACTUALS_COLUMNS: list[str] = ["date", "Total"]
TAKEAWAY_TRUTH_COLUMNS: list[str] = ["date", "expected"]

_DECIMALS = {
    "Total": 2,
    "tavg": 1,
    "tmin": 1,
    "tmax": 1,
    "prcp": 1,
    "wspd": 1,
    "pres": 1,
    "dinner_impact_score": 1,
    "importance_score": 1,
    "expected": 2,
}

# Delhi monthly climatology (Jan..Dec): mean temperature, diurnal range, chance of a wet day,
# mean rain on a wet day (mm), wind (km/h) and sea-level pressure (hPa). Rounded normals.
_CLIMATE = {
    "tavg": [14.0, 17.5, 23.0, 29.0, 33.0, 33.5, 31.0, 30.0, 29.5, 26.0, 20.5, 15.5],
    "range": [12.0, 13.0, 14.0, 15.0, 14.0, 11.0, 8.0, 7.5, 9.0, 13.0, 14.0, 13.0],
    "p_wet": [0.08, 0.08, 0.07, 0.05, 0.08, 0.15, 0.35, 0.35, 0.22, 0.05, 0.02, 0.04],
    "wet_mm": [5.0, 6.0, 5.0, 5.0, 6.0, 10.0, 12.0, 12.0, 10.0, 8.0, 4.0, 5.0],
    "wspd": [5.0, 7.0, 8.0, 9.0, 10.0, 11.0, 9.0, 7.0, 6.0, 4.0, 4.0, 4.0],
    "pres": [1017.0, 1015.0, 1012.0, 1008.0, 1003.0, 999.0, 998.0, 1000.0, 1004.0, 1010.0, 1014.0,
             1017.0],
}  # fmt: skip

# Lunar-calendar holidays move every year; dates for 2022-2027 follow the published Indian
# calendars (approximately for the later years). Other years reuse the nearest listed year's
# month/day, which is good enough for synthetic data.
_MOVABLE_HOLIDAYS: dict[str, dict[int, str]] = {
    "Holi": {
        2022: "03-18", 2023: "03-08", 2024: "03-25", 2025: "03-14", 2026: "03-04", 2027: "03-22",
    },
    "Eid al-Fitr": {
        2022: "05-03", 2023: "04-22", 2024: "04-11", 2025: "03-31", 2026: "03-21", 2027: "03-10",
    },
    "Dussehra": {
        2022: "10-05", 2023: "10-24", 2024: "10-12", 2025: "10-02", 2026: "10-20", 2027: "10-09",
    },
    "Diwali": {
        2022: "10-24", 2023: "11-12", 2024: "10-31", 2025: "10-20", 2026: "11-08", 2027: "10-29",
    },
    "Guru Nanak Jayanti": {
        2022: "11-08", 2023: "11-27", 2024: "11-15", 2025: "11-05", 2026: "11-24", 2027: "11-14",
    },
}  # fmt: skip
_FIXED_HOLIDAYS = {
    "Republic Day": (1, 26),
    "Independence Day": (8, 15),
    "Gandhi Jayanti": (10, 2),
    "Christmas": (12, 25),
}
# Demand multiplier per holiday: families cook and celebrate at home on Holi and Diwali,
# national holidays and Christmas are days off that favour ordering in.
_HOLIDAY_EFFECT = {
    "Republic Day": 1.10,
    "Holi": 0.45,
    "Good Friday": 1.0,
    "Eid al-Fitr": 1.15,
    "Independence Day": 1.10,
    "Gandhi Jayanti": 0.95,
    "Dussehra": 0.85,
    "Diwali": 0.55,
    "Guru Nanak Jayanti": 1.0,
    "Christmas": 1.20,
}

# Match timing by venue region and format: (is_evening in IST, dinner-impact range). Home and
# Asian venues play in the IST evening; Australian day games end before dinner; English and
# Caribbean games run into the Indian evening or night.
_TIMING: dict[str, dict[str, tuple[bool, float, float]]] = {
    "home": {"T20I": (True, 8.0, 9.5), "ODI": (True, 6.0, 8.0), "Test": (False, 0.5, 2.0)},
    "asia": {"T20I": (True, 8.0, 9.5), "ODI": (True, 6.0, 8.0), "Test": (False, 0.5, 2.0)},
    "aus_nz": {"T20I": (False, 1.0, 3.0), "ODI": (False, 1.0, 3.0), "Test": (False, 0.0, 1.0)},
    "eng_sa": {"T20I": (False, 2.0, 4.0), "ODI": (True, 5.0, 7.0), "Test": (True, 3.0, 5.0)},
    "wi_usa": {"T20I": (True, 7.0, 8.5), "ODI": (True, 6.0, 7.5), "Test": (True, 2.5, 4.0)},
}
_AWAY_REGIONS = ["asia", "aus_nz", "eng_sa", "wi_usa"]


@dataclass(frozen=True)
class TakeawayPanel:
    """A generated takeaway series plus what a benchmark needs to score against it.

    Attributes:
        history: one row per day from ``start`` to ``end``, columns :data:`TAKEAWAY_COLUMNS`.
        future: the ``future_days`` days after ``end``, columns :data:`TAKEAWAY_FUTURE_COLUMNS`
            (holidays, school breaks and the fixture list are known in advance; weather is not).
        future_actuals: realised ``Total`` for the future days.
        truth: ``expected`` (the mean ``Total`` was drawn from) for every history and future day.
        matches: the fixture list behind the cricket columns (one row per match day).
    """

    history: pd.DataFrame
    future: pd.DataFrame
    future_actuals: pd.DataFrame
    truth: pd.DataFrame
    matches: pd.DataFrame


def indian_holidays(start: str | dt.date, end: str | dt.date) -> pd.DataFrame:
    """Return the public holidays used by the generator between two dates (inclusive).

    Columns ``date, name``; when two holidays share a day (Gandhi Jayanti and Dussehra in 2025)
    the names are joined with `` / ``.
    """
    lo, hi = parse_day(start), parse_day(end)
    names: dict[pd.Timestamp, list[str]] = {}
    for year in range(lo.year, hi.year + 1):
        days: list[tuple[str, dt.date]] = [
            (name, dt.date(year, m, d)) for name, (m, d) in _FIXED_HOLIDAYS.items()
        ]
        days.append(("Good Friday", easter_sunday(year) - dt.timedelta(days=2)))
        for name, by_year in _MOVABLE_HOLIDAYS.items():
            nearest = min(by_year, key=lambda known: abs(known - year))
            month_day = by_year[nearest]
            days.append((name, dt.date.fromisoformat(f"{year}-{month_day}")))
        for name, day in days:
            ts = pd.Timestamp(day)
            if lo <= ts <= hi:
                names.setdefault(ts, []).append(name)
    rows = sorted((ts, " / ".join(sorted(n))) for ts, n in names.items())
    return pd.DataFrame(rows, columns=["date", "name"])


def _school_breaks(dates: pd.DatetimeIndex, diwali_days: list[pd.Timestamp]) -> np.ndarray:
    """Delhi school calendar: winter break Jan 1-15, summer May 15-Jun 30, Diwali week."""
    month, day = dates.month.to_numpy(), dates.day.to_numpy()
    winter = (month == 1) & (day <= 15)
    summer = ((month == 5) & (day >= 15)) | (month == 6)
    autumn = np.zeros(len(dates), dtype=bool)
    week = pd.Timedelta(days=3)
    for diwali in diwali_days:
        autumn |= (dates >= diwali - week) & (dates <= diwali + week)
    return winter | summer | autumn


def _year_fixtures(rng: np.random.Generator, year: int) -> list[dict[str, object]]:
    """Draw one year's match days: an IPL season, maybe an ICC event, and bilateral series.

    Returns one dict per match day. Each year has its own stream so adding a year to the horizon
    never changes earlier years.
    """
    out: list[dict[str, object]] = []

    def add(day: pd.Timestamp, fmt: str, region: str, importance: float, delhi: bool) -> None:
        evening, lo, hi = _TIMING[region][fmt]
        out.append(
            {
                "date": day,
                "competition": "",
                "format": fmt,
                "region": region,
                "is_t20i": fmt == "T20I",
                "is_home": region == "home",
                "is_delhi": delhi,
                "is_evening": evening,
                "importance_score": round(float(np.clip(importance, 0.0, 10.0)), 1),
                "dinner_impact_score": round(float(rng.uniform(lo, hi)), 1),
            }
        )

    # IPL: a franchise T20 league (not a T20I), every evening for about two months.
    ipl_start = pd.Timestamp(year, 3, 15) + pd.Timedelta(days=int(rng.integers(0, 15)))
    ipl_len = int(rng.integers(56, 66))
    league_days = ipl_len - 6
    delhi_days = set(rng.choice(league_days, size=7, replace=False).tolist())
    for d in range(league_days):
        add(
            ipl_start + pd.Timedelta(days=d),
            "T20I",
            "home",
            float(rng.uniform(3.0, 6.0)) + (1.0 if d in delhi_days else 0.0),
            d in delhi_days,
        )
    for offset, importance in ((0, 7.5), (1, 7.5), (3, 8.0), (5, 9.5)):  # playoffs and final
        add(ipl_start + pd.Timedelta(days=league_days + offset), "T20I", "home", importance, False)
    for m in out:
        m.update(competition="IPL", format="T20", is_t20i=False)
    ipl_end = ipl_start + pd.Timedelta(days=ipl_len)
    blocked = [(ipl_start - pd.Timedelta(days=5), ipl_end + pd.Timedelta(days=10))]

    # ICC event in most years: a month-long tournament with rising stakes.
    if rng.random() < 0.75:
        fmt = str(rng.choice(["T20I", "ODI"]))
        region = str(rng.choice(["home", "asia", "eng_sa", "wi_usa", "aus_nz"]))
        # Windows that can never run into the IPL (latest finish is early March at worst).
        window = [(1, 8), (6, 1), (10, 5)][int(rng.integers(0, 3))]
        day = pd.Timestamp(year, *window) + pd.Timedelta(days=int(rng.integers(0, 10)))
        first = day
        n_matches = int(rng.integers(7, 11))
        for k in range(n_matches):
            stage = k - (n_matches - 3)  # last three: quarter/semi/final
            importance = 6.0 + float(rng.uniform(0.0, 1.5)) if stage < 0 else 8.0 + 0.9 * stage
            delhi = region == "home" and rng.random() < 0.15
            add(day, fmt, region, importance, delhi)
            out[-1]["competition"] = "ICC"
            day += pd.Timedelta(days=int(rng.integers(3, 6)))
        blocked.append((first - pd.Timedelta(days=7), day + pd.Timedelta(days=7)))

    # Bilateral series fill the rest of the calendar.
    cursor = pd.Timestamp(year, 1, 1) + pd.Timedelta(days=int(rng.integers(3, 20)))
    year_end = pd.Timestamp(year, 12, 22)
    while cursor < year_end:
        fmt = str(rng.choice(["T20I", "ODI", "Test"], p=[0.4, 0.3, 0.3]))
        region = "home" if rng.random() < 0.5 else str(rng.choice(_AWAY_REGIONS))
        series_importance = {"T20I": (4.0, 6.0), "ODI": (3.0, 5.5), "Test": (4.0, 6.5)}[fmt]
        base_importance = float(rng.uniform(*series_importance))
        if fmt == "Test":
            n_matches = int(rng.integers(2, 5))
            starts = [
                cursor + pd.Timedelta(days=k * int(rng.integers(8, 12))) for k in range(n_matches)
            ]
            days = [s + pd.Timedelta(days=j) for s in starts for j in range(5)]
            match_of_day = [k for k in range(n_matches) for _ in range(5)]
        else:
            n_matches = int(rng.integers(3, 6)) if fmt == "T20I" else 3
            gap = int(rng.integers(2, 4)) if fmt == "T20I" else int(rng.integers(3, 5))
            days = [cursor + pd.Timedelta(days=k * gap) for k in range(n_matches)]
            match_of_day = list(range(n_matches))
        delhi_match = (
            int(rng.integers(0, n_matches)) if region == "home" and rng.random() < 0.35 else -1
        )
        clash = next(
            (b for b in blocked if days[0] <= b[1] and days[-1] >= b[0]),
            None,
        )
        if clash is not None:
            cursor = clash[1] + pd.Timedelta(days=1)
            continue
        for day, k in zip(days, match_of_day, strict=True):
            if day.year != year:
                break
            decider = 1.0 if k == n_matches - 1 else 0.0
            add(day, fmt, region, base_importance + decider, k == delhi_match)
            out[-1]["competition"] = "bilateral"
        cursor = days[-1] + pd.Timedelta(days=int(rng.integers(12, 45)))
    return out


def _fixtures(rng: np.random.Generator, years: range) -> pd.DataFrame:
    """Fixture list for all years, one row per match day (the most dinner-relevant if two)."""
    year_rngs = rng.spawn(len(years))
    rows = [m for yr, year in zip(year_rngs, years, strict=True) for m in _year_fixtures(yr, year)]
    matches = pd.DataFrame(rows)
    matches = matches.sort_values(["date", "dinner_impact_score"], ascending=[True, False])
    return matches.drop_duplicates("date").reset_index(drop=True)


def _monthly(values: list[float], doy: np.ndarray) -> np.ndarray:
    """Interpolate mid-month climatology to each day of year, wrapping around New Year."""
    mid = (np.arange(12) + 0.5) * 365.25 / 12.0
    xs = np.concatenate([mid - 365.25, mid, mid + 365.25])
    return np.interp(doy, xs, np.tile(values, 3))


def _weather(rng: np.random.Generator, dates: pd.DatetimeIndex, n_hist: int) -> pd.DataFrame:
    """Delhi-like daily weather: seasonal normals, persistent anomalies and a monsoon."""
    n_days = len(dates)
    doy = dates.dayofyear.to_numpy().astype(np.float64) - 0.5

    samplers = {
        "t_eps": lambda g, n: g.standard_normal(n),
        "p_eps": lambda g, n: g.standard_normal(n),
        "wet_u": lambda g, n: g.random(n),
        "rain": lambda g, n: g.gamma(0.8, 1.0 / 0.8, n),
        "wind": lambda g, n: g.gamma(6.0, 1.0 / 6.0, n),
        "range_eps": lambda g, n: g.standard_normal(n),
        "split_u": lambda g, n: g.random(n),
    }
    # One stream per variable, history drawn before future: neither the history nor the first
    # k future days change with the horizon length.
    streams = rng.spawn(len(samplers))
    draws = {
        name: np.concatenate([draw(g, n_hist), draw(g, n_days - n_hist)])
        for g, (name, draw) in zip(streams, samplers.items(), strict=True)
    }

    p_wet = _monthly(_CLIMATE["p_wet"], doy)
    wet = np.zeros(n_days, dtype=bool)
    for t in range(n_days):
        # Wet spells persist: rain yesterday makes rain today more likely.
        p = min(0.9, p_wet[t] * 1.6) if t and wet[t - 1] else p_wet[t]
        wet[t] = draws["wet_u"][t] < p
    prcp = np.where(wet, _monthly(_CLIMATE["wet_mm"], doy) * draws["rain"], 0.0)
    prcp = np.round(np.where(wet, np.maximum(prcp, 0.1), 0.0), 1)

    t_anom = ar1(draws["t_eps"], phi=0.7, sigma=1.8)
    tavg = _monthly(_CLIMATE["tavg"], doy) + t_anom - 1.5 * wet
    # Cloudy, rainy days have a smaller day-night range.
    spread = np.maximum(
        _monthly(_CLIMATE["range"], doy) * np.where(wet, 0.6, 1.0) + 1.2 * draws["range_eps"], 2.0
    )
    share = 0.4 + 0.2 * draws["split_u"]  # where tavg sits between tmin and tmax
    tavg_r = np.round(tavg, 1)
    tmin = np.round(tavg_r - share * spread, 1)
    tmax = np.round(tavg_r + (1.0 - share) * spread, 1)
    wspd = np.round(_monthly(_CLIMATE["wspd"], doy) * draws["wind"] * np.where(wet, 1.3, 1.0), 1)
    pres = np.round(
        _monthly(_CLIMATE["pres"], doy) + ar1(draws["p_eps"], phi=0.8, sigma=2.5) - 2.0 * wet, 1
    )
    return pd.DataFrame(
        {"tavg": tavg_r, "tmin": tmin, "tmax": tmax, "prcp": prcp, "wspd": wspd, "pres": pres}
    )


def generate_takeaway(
    start: str = "2023-01-01",
    end: str = "2025-10-31",
    future_days: int = 28,
    seed: int = 11,
) -> TakeawayPanel:
    """Generate the seeded single-restaurant takeaway series.

    Args:
        start: first history day (ISO date).
        end: last history day (ISO date), inclusive.
        future_days: number of days after ``end`` in ``future``/``future_actuals``/``truth``.
        seed: seed of the single ``numpy.random.Generator`` that drives everything.

    Returns:
        A :class:`TakeawayPanel`; ``Total`` is in rupees with 2 decimals.
    """
    if future_days < 0:
        raise ValueError("future_days must be >= 0")
    lo, hi = parse_day(start), parse_day(end)
    if hi < lo:
        raise ValueError(f"end {end} is before start {start}")
    dates = pd.date_range(lo, hi + pd.Timedelta(days=future_days), freq="D")
    n_days, n_hist = len(dates), (hi - lo).days + 1

    root = np.random.default_rng(seed)
    param_rng, fixture_rng, weather_rng, noise_rng = root.spawn(4)

    base_orders = float(param_rng.uniform(45.0, 60.0))
    growth = float(param_rng.uniform(0.04, 0.12))
    ticket0 = float(param_rng.uniform(350.0, 420.0))
    weekly = np.array([0.86, 0.88, 0.92, 0.95, 1.12, 1.30, 1.22]) * np.exp(
        param_rng.normal(0.0, 0.02, 7)
    )
    weekly /= weekly.mean()
    dispersion = 30.0  # orders: negative binomial size
    order_shape = 4.0  # order value: gamma shape (coefficient of variation 0.5)

    # ---- known-in-advance calendar ----
    hol = indian_holidays(dates[0], dates[-1])
    names = pd.Series("", index=dates, dtype=object)
    names.loc[hol["date"]] = hol["name"].to_numpy()
    holiday_name = names.to_numpy()
    is_holiday = holiday_name != ""
    holiday_f = np.array(
        [
            np.prod([_HOLIDAY_EFFECT[n] for n in name.split(" / ")]) if name else 1.0
            for name in holiday_name
        ]
    )
    diwali_days = [d for d, n in zip(hol["date"], hol["name"], strict=True) if "Diwali" in n]
    is_school_break = _school_breaks(dates, diwali_days)
    dow = dates.dayofweek.to_numpy()
    is_weekend = dow >= 5

    matches = _fixtures(fixture_rng, range(dates[0].year, dates[-1].year + 1))
    cricket = matches.set_index("date").reindex(dates)
    is_cricket_day = cricket["dinner_impact_score"].notna().to_numpy()
    dinner = cricket["dinner_impact_score"].fillna(0.0).to_numpy(dtype=np.float64)
    importance = cricket["importance_score"].fillna(0.0).to_numpy(dtype=np.float64)
    # NaN (no match) compares unequal to True, which is the "false" the contract wants.
    flags = {
        c: cricket[c].eq(True).to_numpy() for c in ["is_evening", "is_home", "is_delhi", "is_t20i"]
    }

    # ---- observed weather ----
    weather = _weather(weather_rng, dates, n_hist)

    # ---- expected orders and ticket ----
    years = np.arange(n_days) / 365.25
    doy = dates.dayofyear.to_numpy().astype(np.float64)
    # Mild winter peak (wedding season, cold evenings) on top of the weather effects.
    yearly_f = 1.0 + 0.06 * np.cos(2.0 * np.pi * (doy - 10.0) / 365.25)
    school_f = np.where(is_school_break, np.where(dates.month.isin([5, 6]), 0.93, 1.05), 1.0)
    # Evening matches keep people home and ordering; the bigger the match, the bigger the lift.
    cricket_f = (
        1.0
        + 0.03 * dinner * (0.5 + importance / 20.0)
        + 0.06 * (flags["is_delhi"] & flags["is_evening"])
    )
    rain_f = 1.0 + 0.18 * (1.0 - np.exp(-weather["prcp"].to_numpy() / 12.0))
    heat_f = 1.0 + 0.02 * np.maximum(weather["tmax"].to_numpy() - 38.0, 0.0)
    cold_f = 1.0 + 0.015 * np.maximum(10.0 - weather["tmin"].to_numpy(), 0.0)
    # New Year's Eve is not a public holiday, so no column flags it: a realistic unexplained spike.
    nye_f = np.where((dates.month == 12) & (dates.day == 31), 1.35, 1.0)
    mu_orders = (
        base_orders
        * np.exp(growth * years)
        * weekly[dow]
        * yearly_f
        * holiday_f
        * school_f
        * cricket_f
        * rain_f
        * heat_f
        * cold_f
        * nye_f
    )
    ticket = ticket0 * 1.05**years * np.where(is_weekend, 1.08, 1.0)
    expected = mu_orders * ticket

    # ---- noise: one stream per component, history drawn before future ----
    mix_rng, count_rng, value_rng = noise_rng.spawn(3)
    orders = np.empty(n_days, dtype=np.int64)
    value = np.empty(n_days)
    for a, b in ((0, n_hist), (n_hist, n_days)):
        mix = mix_rng.gamma(dispersion, 1.0 / dispersion, b - a)
        orders[a:b] = count_rng.poisson(mu_orders[a:b] * mix)
        # Sum of n gamma(k, ticket/k) order values is gamma(n*k, ticket/k).
        shape = np.maximum(orders[a:b] * order_shape, 1.0)
        value[a:b] = value_rng.gamma(shape, ticket[a:b] / order_shape) * (orders[a:b] > 0)
    total = np.round(value, 2)

    known = pd.DataFrame(
        {
            "date": dates,
            "is_holiday": is_holiday,
            "holiday_name": holiday_name,
            "is_school_break": is_school_break,
            "dinner_impact_score": dinner,
            "importance_score": importance,
            "is_evening": flags["is_evening"],
            "is_weekend": is_weekend,
            "is_home": flags["is_home"],
            "is_delhi": flags["is_delhi"],
            "is_t20i": flags["is_t20i"],
            "is_cricket_day": is_cricket_day,
        }
    )
    full = pd.concat([known, weather], axis=1).assign(Total=total)[TAKEAWAY_COLUMNS]
    truth = pd.DataFrame({"date": dates, "expected": np.round(expected, 2)})
    history = full.iloc[:n_hist].reset_index(drop=True)
    future = full.iloc[n_hist:][TAKEAWAY_FUTURE_COLUMNS].reset_index(drop=True)
    actuals = full.iloc[n_hist:][TAKEAWAY_ACTUALS_COLUMNS].reset_index(drop=True)
    return TakeawayPanel(
        history=history, future=future, future_actuals=actuals, truth=truth, matches=matches
    )


def write_takeaway_csv(
    path: str | os.PathLike[str],
    *,
    future_path: str | os.PathLike[str] | None = None,
    actuals_path: str | os.PathLike[str] | None = None,
    truth_path: str | os.PathLike[str] | None = None,
    start: str = "2023-01-01",
    end: str = "2025-10-31",
    future_days: int = 28,
    seed: int = 11,
) -> dict[str, int]:
    """Write the takeaway series to CSV files and return the number of data rows per file.

    Args:
        path: history CSV (columns :data:`TAKEAWAY_COLUMNS`).
        future_path: optional future CSV (columns :data:`TAKEAWAY_FUTURE_COLUMNS`).
        actuals_path: optional future-actuals CSV (``date, Total``).
        truth_path: optional truth CSV (``date, expected``) for history and future.
        start, end, future_days, seed: as in :func:`generate_takeaway`.
    """
    panel = generate_takeaway(start, end, future_days, seed)
    frames = {
        "history": (path, panel.history),
        "future": (future_path, panel.future),
        "future_actuals": (actuals_path, panel.future_actuals),
        "truth": (truth_path, panel.truth),
    }
    counts: dict[str, int] = {}
    for name, (target, frame) in frames.items():
        counts[name] = 0
        if target is None:
            continue
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as handle:
            write_frame_csv(frame, handle, decimals=_DECIMALS, header=True)
        counts[name] = len(frame)
    return counts

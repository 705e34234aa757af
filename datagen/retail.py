"""Seeded multi-store, multi-item daily retail sales panel (the default ``retail`` dataset).

Every number comes from one ``numpy.random.Generator(seed)``. The generator spawns independent
child streams for item parameters, each item's promo and price calendars, the regional and
per-store weather and the per-store sampling noise, and each stream draws all history days before
any future day. Consequences the tests rely on:

* the same arguments give byte-identical CSV files;
* ``history`` does not change when only ``future_days`` changes;
* building the panel in memory and streaming it store by store give the same bytes.

Sales for store ``s``, item ``i`` and day ``t`` are drawn from a negative binomial (gamma-Poisson)
distribution with mean ``expected`` = base level x store size x store/item affinity x trend x
yearly seasonality x weekly profile x price effect x promo lift x post-promo dip x holiday effect x
temperature effect x launch ramp, and 0 when the store is closed or the item not yet launched.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from datagen._common import ar1, easter_sunday, nth_weekday, parse_day, write_frame_csv

RETAIL_COLUMNS: list[str] = [
    "date",
    "store_id",
    "item_id",
    "sales",
    "price",
    "on_promo",
    "is_holiday",
    "temperature",
    "is_available",
]
"""CSV columns of the history file, in order (the ``retail`` contract)."""

RETAIL_FUTURE_COLUMNS: list[str] = [
    "date",
    "store_id",
    "item_id",
    "price",
    "on_promo",
    "is_holiday",
    "is_available",
]
"""Columns of the future file: the contract minus the target and the temperature (a forecast
column: the pipeline fills it by its climatology), with the known closures as
``is_available`` false."""

RETAIL_ACTUALS_COLUMNS: list[str] = ["date", "store_id", "item_id", "sales"]
RETAIL_TRUTH_COLUMNS: list[str] = ["date", "store_id", "item_id", "expected"]

# Decimals used in the CSV files; frames hold values already rounded to these.
_DECIMALS = {"price": 2, "temperature": 1, "expected": 4}

# Reference temperature (deg C) at which weather-sensitive items sell their base level.
_TEMP_REF = 15.0
# Day of year of the warmest day in the synthetic climate (mid-July, northern hemisphere).
_WARMEST_DOY = 200.0


@dataclass(frozen=True)
class RetailPanel:
    """A generated retail panel plus everything a benchmark needs to score against it.

    Attributes:
        history: one row per store, launched item and day from ``start`` to ``end``, columns
            :data:`RETAIL_COLUMNS`. Closed days (Dec 25, renovation) have a row with sales 0 and
            ``is_available`` false (what a till export shows); days before an item's launch
            have no row.
        future: one row per launched series and day for the ``future_days`` days after ``end``,
            columns :data:`RETAIL_FUTURE_COLUMNS` (known-in-advance values only). Known closed
            days are kept, ``is_available`` false, so every series x day has a row to forecast.
        future_actuals: realised ``sales`` for exactly the rows of ``future`` (0 on closed days).
        truth: ``expected`` (the mean sales were drawn from) for every store x item x day of
            history and future, including closed and pre-launch days where it is 0.
        items: per-item parameters (roles, launch date, elasticity, ...), for tests and analysis.
        closures: ``store_id, date, reason`` of every store-closed day in history and future.
    """

    history: pd.DataFrame
    future: pd.DataFrame
    future_actuals: pd.DataFrame
    truth: pd.DataFrame
    items: pd.DataFrame
    closures: pd.DataFrame


# name, month/day or rule, effect on the day, uplift on the day before (halved two days before).
# An effect of 0 means every store is closed.
def _holiday_rules(year: int) -> list[tuple[str, dt.date, float, float]]:
    good_friday = easter_sunday(year) - dt.timedelta(days=2)
    return [
        ("New Year's Day", dt.date(year, 1, 1), 0.55, 1.0),
        ("Good Friday", good_friday, 0.65, 1.25),
        ("Labour Day", dt.date(year, 5, 1), 0.7, 1.1),
        ("Thanksgiving", nth_weekday(year, 11, 3, 4), 0.6, 1.3),
        ("Christmas Eve", dt.date(year, 12, 24), 1.3, 1.25),
        ("Christmas Day", dt.date(year, 12, 25), 0.0, 1.0),
        ("Boxing Day", dt.date(year, 12, 26), 0.8, 1.0),
        ("New Year's Eve", dt.date(year, 12, 31), 1.25, 1.1),
    ]


def retail_holidays(start: str | dt.date, end: str | dt.date) -> pd.DataFrame:
    """Return the fixed yearly public-holiday list between two dates (inclusive).

    Columns: ``date, name, effect, pre_uplift``. ``effect`` multiplies demand on the day (0 means
    every store is closed); ``pre_uplift`` multiplies demand on the day before (half of it two
    days before), which is when people stock up.
    """
    lo, hi = parse_day(start), parse_day(end)
    rows = [
        (pd.Timestamp(day), name, effect, pre)
        for year in range(lo.year, hi.year + 1)
        for name, day, effect, pre in _holiday_rules(year)
        if lo <= pd.Timestamp(day) <= hi
    ]
    return pd.DataFrame(rows, columns=["date", "name", "effect", "pre_uplift"])


@dataclass
class _Setup:
    """Everything shared by all stores, computed once before generating store blocks."""

    dates: pd.DatetimeIndex  # history + future
    n_hist: int
    store_ids: list[str]
    item_ids: list[str]
    is_holiday: np.ndarray  # (days,) bool
    dow: np.ndarray  # (days,) 0=Mon
    doy: np.ndarray  # (days,) float
    launch_idx: np.ndarray  # (items,) first day index with rows
    price: np.ndarray  # (items, days) shelf price
    on_promo: np.ndarray  # (items, days) bool
    item_day_factor: np.ndarray  # (items, days) everything that does not depend on the store
    item_weekly: np.ndarray  # (items, 7)
    base: np.ndarray  # (items,)
    temp_beta: np.ndarray  # (items,)
    dispersion: np.ndarray  # (items,) negative binomial size r
    store_size: np.ndarray  # (stores,)
    store_weekend_tilt: np.ndarray  # (stores,)
    affinity: np.ndarray  # (stores, items)
    temp_mean: np.ndarray  # (stores,)
    temp_amp: np.ndarray  # (stores,)
    regional_temp: np.ndarray  # (days,) anomaly shared by all stores
    store_closed: np.ndarray  # (stores, days) bool, includes Dec 25
    closure_reason: np.ndarray  # (stores, days) object, "" when open
    weather_rngs: list[np.random.Generator]
    noise_rngs: list[np.random.Generator]
    items: pd.DataFrame


@dataclass
class _StoreBlock:
    """One store's simulated arrays over all days (items x days)."""

    store: int
    temperature: np.ndarray  # (days,)
    expected: np.ndarray  # (items, days)
    sales: np.ndarray  # (items, days)


def _role_counts(n_items: int) -> tuple[int, int, int, int]:
    """How many slow movers, mid-history launches, cold-weather and warm-weather items to make.

    Fixed fractions (at least one each once the panel is big enough) so that even a 10-item demo
    always contains every behaviour the pipeline has to cope with.
    """
    n_slow = max(1, int(0.25 * n_items + 0.5)) if n_items >= 2 else 0
    n_launch = max(1, int(0.2 * n_items + 0.5)) if n_items >= 3 else 0
    n_cold = max(1, int(0.15 * n_items + 0.5)) if n_items >= 4 else 0
    n_hot = max(1, int(0.1 * n_items + 0.5)) if n_items >= 6 else 0
    return n_slow, n_launch, n_cold, n_hot


def _charm(price: float) -> float:
    """Round a price to the nearest ``x.49``/``x.99`` shelf price, as retailers do."""
    return max(0.49, round(round(price * 2.0) / 2.0 - 0.01, 2))


def _promo_calendar(
    rng: np.random.Generator, n_days: int, dip_days: int, slow: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one item's chain-wide promo episodes day by day through the whole horizon.

    Returns ``(on_promo, discount, days_after_promo)``; ``days_after_promo`` is 1..dip_days on the
    days right after an episode and 0 elsewhere. Episodes are drawn sequentially from the item's
    own stream, so extending the horizon only appends episodes. The gap after an episode is at
    least the dip length, so a dip is never cut short by the next promo.
    """
    on_promo = np.zeros(n_days, dtype=bool)
    discount = np.zeros(n_days)
    after = np.zeros(n_days, dtype=np.int64)
    gap_lo, gap_hi = (35, 110) if slow else (14, 56)
    day = int(rng.integers(0, 45))
    while day < n_days:
        length = int(rng.integers(3, 8))
        depth = float(rng.choice([0.1, 0.15, 0.2, 0.25, 0.3]))
        stop = min(day + length, n_days)
        on_promo[day:stop] = True
        discount[day:stop] = depth
        for j in range(1, dip_days + 1):
            if day + length - 1 + j < n_days:
                after[day + length - 1 + j] = j
        day += length + dip_days + int(rng.integers(gap_lo, gap_hi))
    return on_promo, discount, after


def _list_price_path(rng: np.random.Generator, n_days: int, start_price: float) -> np.ndarray:
    """Draw one item's planned list price: occasional step changes, mostly increases."""
    path = np.empty(n_days)
    price = _charm(start_price)
    day = 0
    change_at = int(rng.integers(30, 200))
    while day < n_days:
        path[day:change_at] = price
        day = change_at
        price = _charm(price * (1.0 + float(rng.uniform(-0.05, 0.10))))
        change_at = day + int(rng.integers(60, 240))
    return path


def _setup(
    n_stores: int, n_items: int, start: str, end: str, future_days: int, seed: int
) -> _Setup:
    """Draw all parameters and calendars shared across stores."""
    if n_stores < 1 or n_items < 1:
        raise ValueError("n_stores and n_items must be at least 1")
    if future_days < 0:
        raise ValueError("future_days must be >= 0")
    lo, hi = parse_day(start), parse_day(end)
    if hi < lo:
        raise ValueError(f"end {end} is before start {start}")
    dates = pd.date_range(lo, hi + pd.Timedelta(days=future_days), freq="D")
    n_days, n_hist = len(dates), (hi - lo).days + 1

    root = np.random.default_rng(seed)
    param_rng, calendar_root, weather_root, noise_root = root.spawn(4)
    # Per-item calendars and per-store weather/noise get their own child streams: a longer
    # horizon then only appends draws, and no store's draws depend on how much another consumed.
    calendar_rngs = calendar_root.spawn(n_items)
    weather_children = weather_root.spawn(1 + n_stores)
    noise_rngs = noise_root.spawn(n_stores)

    store_w = max(2, len(str(n_stores)))
    item_w = max(3, len(str(n_items)))
    store_ids = [f"S{s + 1:0{store_w}d}" for s in range(n_stores)]
    item_ids = [f"I{i + 1:0{item_w}d}" for i in range(n_items)]

    # ---- item parameters (fixed draw order: never reorder, it would change every dataset) ----
    perm = param_rng.permutation(n_items)
    base_regular = np.clip(np.exp(param_rng.normal(np.log(10.0), 0.7, n_items)), 2.0, 60.0)
    base_slow = param_rng.uniform(0.1, 0.6, n_items)
    trend = param_rng.uniform(-0.25, 0.3, n_items)
    yearly_amp = param_rng.uniform(0.0, 0.3, n_items)
    yearly_peak = param_rng.uniform(0.0, 365.25, n_items)
    weekend_amp = param_rng.uniform(0.05, 0.6, n_items)
    peak_day = param_rng.integers(4, 7, n_items)  # Fri, Sat or Sun
    weekday_jitter = param_rng.normal(0.0, 0.04, (n_items, 7))
    elasticity = param_rng.uniform(-2.2, -0.5, n_items)
    promo_lift = param_rng.uniform(0.15, 0.6, n_items)
    dip_days = param_rng.integers(3, 6, n_items)
    dip_depth = param_rng.uniform(0.2, 0.4, n_items)
    holiday_sens = param_rng.uniform(0.6, 1.4, n_items)
    dispersion = param_rng.uniform(5.0, 40.0, n_items)
    launch_frac = param_rng.uniform(0.25, 0.75, n_items)
    beta_cold = param_rng.uniform(0.03, 0.06, n_items)
    beta_hot = param_rng.uniform(-0.035, -0.015, n_items)
    price0 = np.clip(np.exp(param_rng.normal(np.log(3.5), 0.7, n_items)), 0.6, 30.0)
    # ---- store parameters ----
    store_size = param_rng.uniform(0.6, 1.5, n_stores)
    store_weekend_tilt = param_rng.uniform(-0.1, 0.25, n_stores)
    affinity = np.exp(param_rng.normal(0.0, 0.2, (n_stores, n_items)))
    temp_mean = param_rng.uniform(7.0, 15.0, n_stores)
    temp_amp = param_rng.uniform(7.0, 11.0, n_stores)
    renovation_store = int(param_rng.integers(0, n_stores))
    renovation_frac = float(param_rng.uniform(0.3, 0.7))
    renovation_len = int(param_rng.integers(7, 11))

    n_slow, n_launch, n_cold, n_hot = _role_counts(n_items)
    slow_idx = perm[:n_slow]
    launch_idx_items = perm[n_slow : n_slow + n_launch]
    cold_idx = perm[n_slow + n_launch : n_slow + n_launch + n_cold]
    hot_idx = perm[n_slow + n_launch + n_cold : n_slow + n_launch + n_cold + n_hot]

    is_slow = np.zeros(n_items, dtype=bool)
    is_slow[slow_idx] = True
    base = np.where(is_slow, base_slow, base_regular)
    launch_idx = np.zeros(n_items, dtype=np.int64)
    launch_idx[launch_idx_items] = (launch_frac[launch_idx_items] * n_hist).astype(np.int64)
    temp_beta = np.zeros(n_items)
    temp_beta[cold_idx] = beta_cold[cold_idx]
    temp_beta[hot_idx] = beta_hot[hot_idx]

    # ---- calendar ----
    day_index = np.arange(n_days)
    dow = dates.dayofweek.to_numpy()
    doy = dates.dayofyear.to_numpy().astype(np.float64)
    years = day_index / 365.25
    hol = retail_holidays(dates[0], dates[-1])
    pos = dates.get_indexer(hol["date"])
    is_holiday = np.zeros(n_days, dtype=bool)
    is_holiday[pos] = True
    hol_effect = np.ones(n_days)
    hol_effect[pos] = hol["effect"].to_numpy()
    closed_all = np.zeros(n_days, dtype=bool)
    closed_all[pos[hol["effect"].to_numpy() == 0.0]] = True
    pre_uplift = np.ones(n_days)
    for p, uplift in zip(pos, hol["pre_uplift"].to_numpy(), strict=True):
        for back, factor in ((1, uplift), (2, 1.0 + (uplift - 1.0) / 2.0)):
            q = p - back
            # The stock-up happens on ordinary days; a holiday keeps its own effect.
            if q >= 0 and not is_holiday[q]:
                pre_uplift[q] = max(pre_uplift[q], factor)

    # ---- item x day factors that do not depend on the store ----
    price = np.empty((n_items, n_days))
    on_promo = np.zeros((n_items, n_days), dtype=bool)
    dip = np.ones((n_items, n_days))
    promo_factor = np.ones((n_items, n_days))
    for i in range(n_items):
        promo_rng, price_rng = calendar_rngs[i].spawn(2)
        promo, disc, after = _promo_calendar(promo_rng, n_days, int(dip_days[i]), bool(is_slow[i]))
        list_price = _list_price_path(price_rng, n_days, float(price0[i]))
        price[i] = np.round(list_price * (1.0 - disc), 2)
        on_promo[i] = promo
        promo_factor[i] = np.where(promo, 1.0 + promo_lift[i], 1.0)
        k = int(dip_days[i])
        # Pantry loading: deepest right after the promo, recovering linearly over k days.
        dip[i] = np.where(after > 0, 1.0 - dip_depth[i] * (k - after + 1) / k, 1.0)
    ref_price = np.array([_charm(p) for p in price0])
    price_effect = (price / ref_price[:, None]) ** elasticity[:, None]

    trend_f = np.exp(trend[:, None] * years[None, :])
    yearly_f = 1.0 + yearly_amp[:, None] * np.cos(
        2.0 * np.pi * (doy[None, :] - yearly_peak[:, None]) / 365.25
    )
    day_effect = np.where(closed_all, 1.0, hol_effect) * pre_uplift
    holiday_f = 1.0 + holiday_sens[:, None] * (day_effect[None, :] - 1.0)
    age = day_index[None, :] - launch_idx[:, None]
    launched = age >= 0
    # New items take a few weeks to reach their base level; items present from day 0 are mature.
    ramp = np.where(launch_idx[:, None] > 0, 1.0 - 0.6 * np.exp(-np.maximum(age, 0) / 21.0), 1.0)
    item_day_factor = (
        trend_f * yearly_f * price_effect * promo_factor * dip * holiday_f * ramp * launched
    )

    item_weekly = 1.0 + weekday_jitter
    for i in range(n_items):
        item_weekly[i, 4] += 0.3 * weekend_amp[i]  # Friday evening shopping
        item_weekly[i, 5] += 0.5 * weekend_amp[i]
        item_weekly[i, 6] += 0.5 * weekend_amp[i]
        item_weekly[i, peak_day[i]] += 0.5 * weekend_amp[i]

    # ---- closures ----
    store_closed = np.repeat(closed_all[None, :], n_stores, axis=0)
    closure_reason = np.where(store_closed, "christmas", "").astype(object)
    # A renovation only makes sense in a history long enough to still show the store trading;
    # the draws above happen regardless so short panels do not shift the rest of the stream.
    if n_hist >= 90:
        ren_start = int(renovation_frac * n_hist)
        ren_stop = ren_start + renovation_len
        store_closed[renovation_store, ren_start:ren_stop] = True
        closure_reason[renovation_store, ren_start:ren_stop] = "renovation"
    # A yearly stocktake, planned and so known in advance (the future file marks it): store s
    # closes on the (s % 4 + 1)-th Tuesday of November. No random draw: the stream is unchanged.
    for year in range(dates[0].year, dates[-1].year + 1):
        for s in range(n_stores):
            day = pd.Timestamp(nth_weekday(year, 11, 1, s % 4 + 1))
            at = dates.get_indexer([day])[0]
            if at >= 0:
                store_closed[s, at] = True
                closure_reason[s, at] = "stocktake"

    # Regional anomaly (shared by all stores: weather fronts) drawn history-first.
    regional_rng = weather_children[0]
    regional_eps = np.concatenate(
        [regional_rng.standard_normal(n_hist), regional_rng.standard_normal(n_days - n_hist)]
    )
    regional_temp = ar1(regional_eps, phi=0.75, sigma=2.5)

    peak_name = np.array(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])[peak_day]
    role = np.full(n_items, "regular", dtype=object)
    role[slow_idx] = "slow_mover"
    role[launch_idx_items] = "launched_mid_history"
    role[cold_idx] = "cold_weather"
    role[hot_idx] = "warm_weather"
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "role": role,
            "is_slow_mover": is_slow,
            "launch_date": dates[launch_idx],
            "base_level": base,
            "trend_per_year": trend,
            "elasticity": elasticity,
            "promo_lift": promo_lift,
            "post_promo_dip_days": dip_days,
            "post_promo_dip_depth": dip_depth,
            "temp_beta": temp_beta,
            "weekend_peak_day": peak_name,
            "nb_dispersion": dispersion,
            "start_list_price": ref_price,
        }
    )

    return _Setup(
        dates=dates,
        n_hist=n_hist,
        store_ids=store_ids,
        item_ids=item_ids,
        is_holiday=is_holiday,
        dow=dow,
        doy=doy,
        launch_idx=launch_idx,
        price=price,
        on_promo=on_promo,
        item_day_factor=item_day_factor,
        item_weekly=item_weekly,
        base=base,
        temp_beta=temp_beta,
        dispersion=dispersion,
        store_size=store_size,
        store_weekend_tilt=store_weekend_tilt,
        affinity=affinity,
        temp_mean=temp_mean,
        temp_amp=temp_amp,
        regional_temp=regional_temp,
        store_closed=store_closed,
        closure_reason=closure_reason,
        weather_rngs=list(weather_children[1:]),
        noise_rngs=list(noise_rngs),
        items=items,
    )


def _simulate_store(setup: _Setup, s: int) -> _StoreBlock:
    """Simulate temperature, expected sales and sampled sales of one store over all days."""
    n_days, n_hist = len(setup.dates), setup.n_hist
    n_fut = n_days - n_hist

    # Work on copies so simulating a store is a pure function of the setup (repeatable).
    w_rng = copy.deepcopy(setup.weather_rngs[s])
    local_eps = np.concatenate([w_rng.standard_normal(n_hist), w_rng.standard_normal(n_fut)])
    temperature = (
        setup.temp_mean[s]
        + setup.temp_amp[s] * np.cos(2.0 * np.pi * (setup.doy - _WARMEST_DOY) / 365.25)
        + setup.regional_temp
        + ar1(local_eps, phi=0.6, sigma=1.0)
    )
    # Demand reacts to the temperature that is published, so an oracle with the CSV can
    # reproduce ``expected`` exactly.
    temperature = np.round(temperature, 1)

    weekly = setup.item_weekly.copy()
    weekly[:, 5:] *= 1.0 + setup.store_weekend_tilt[s]
    weekly /= weekly.mean(axis=1, keepdims=True)  # keep base_level the weekly average

    level = setup.base * setup.store_size[s] * setup.affinity[s]
    temp_f = np.exp(setup.temp_beta[:, None] * (temperature[None, :] - _TEMP_REF))
    expected = (
        level[:, None]
        * setup.item_day_factor
        * weekly[:, setup.dow]
        * temp_f
        * ~setup.store_closed[s][None, :]
    )

    # Gamma-Poisson = negative binomial with mean ``expected`` and variance mu + mu^2 / r.
    # Separate streams for the gamma mix and the Poisson count, history drawn before future and
    # day-major order: then neither past sales nor the first k future days change with the
    # horizon length.
    mix_rng, count_rng = copy.deepcopy(setup.noise_rngs[s]).spawn(2)
    r = setup.dispersion[None, :]
    sales = np.empty(expected.shape, dtype=np.int64)
    for lo, hi in ((0, n_hist), (n_hist, n_days)):
        shape = np.broadcast_to(r, (hi - lo, len(r[0])))
        mix = mix_rng.gamma(shape, 1.0 / shape)
        sales[:, lo:hi] = count_rng.poisson(expected[:, lo:hi].T * mix).T
    return _StoreBlock(store=s, temperature=temperature, expected=expected, sales=sales)


def _store_frames(
    setup: _Setup, block: _StoreBlock
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Turn one store block into its history, future, future-actuals and truth rows.

    Rows are ordered item by item, then by date, so every series is contiguous.
    """
    s, n_hist = block.store, setup.n_hist
    n_items, n_days = block.expected.shape
    day_index = np.arange(n_days)
    launched = day_index[None, :] >= setup.launch_idx[:, None]
    in_hist = day_index < n_hist
    store_id = setup.store_ids[s]
    item_ids = np.array(setup.item_ids, dtype=object)
    dates = setup.dates.to_numpy()

    def rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.nonzero(mask)  # C order = item-major, then date

    hi, hd = rows(launched & in_hist[None, :])
    open_day = ~setup.store_closed[s]
    history = pd.DataFrame(
        {
            "date": dates[hd],
            "store_id": np.full(len(hd), store_id, dtype=object),
            "item_id": item_ids[hi],
            "sales": block.sales[hi, hd],
            "price": setup.price[hi, hd],
            "on_promo": setup.on_promo[hi, hd],
            "is_holiday": setup.is_holiday[hd],
            "temperature": block.temperature[hd],
            "is_available": open_day[hd],
        },
        columns=RETAIL_COLUMNS,
    )

    fi, fd = rows(launched & ~in_hist[None, :])
    keys = {
        "date": dates[fd],
        "store_id": np.full(len(fd), store_id, dtype=object),
        "item_id": item_ids[fi],
    }
    future = pd.DataFrame(
        {
            **keys,
            "price": setup.price[fi, fd],
            "on_promo": setup.on_promo[fi, fd],
            "is_holiday": setup.is_holiday[fd],
            "is_available": open_day[fd],
        },
        columns=RETAIL_FUTURE_COLUMNS,
    )
    actuals = pd.DataFrame({**keys, "sales": block.sales[fi, fd]}, columns=RETAIL_ACTUALS_COLUMNS)

    truth = pd.DataFrame(
        {
            "date": np.tile(dates, n_items),
            "store_id": np.full(n_items * n_days, store_id, dtype=object),
            "item_id": np.repeat(item_ids, n_days),
            "expected": np.round(block.expected.ravel(), 4),
        },
        columns=RETAIL_TRUTH_COLUMNS,
    )
    return history, future, actuals, truth


def _closures(setup: _Setup) -> pd.DataFrame:
    s_idx, d_idx = np.nonzero(setup.store_closed)
    return pd.DataFrame(
        {
            "store_id": np.array(setup.store_ids, dtype=object)[s_idx],
            "date": setup.dates.to_numpy()[d_idx],
            "reason": setup.closure_reason[s_idx, d_idx],
        }
    )


def _iter_store_frames(
    setup: _Setup,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    for s in range(len(setup.store_ids)):
        yield _store_frames(setup, _simulate_store(setup, s))


def generate_retail(
    n_stores: int = 3,
    n_items: int = 10,
    start: str = "2023-01-01",
    end: str = "2025-10-31",
    future_days: int = 28,
    seed: int = 7,
) -> RetailPanel:
    """Generate a seeded retail sales panel in memory.

    Args:
        n_stores: number of stores (``S01``...).
        n_items: number of items (``I001``...), sold in every store.
        start: first history day (ISO date).
        end: last history day (ISO date), inclusive.
        future_days: number of days after ``end`` in ``future``/``future_actuals``/``truth``.
        seed: seed of the single ``numpy.random.Generator`` that drives everything.

    Returns:
        A :class:`RetailPanel`. For very large panels (tens of millions of rows) prefer
        :func:`write_retail_csv`, which streams store by store instead of holding every frame.
    """
    setup = _setup(n_stores, n_items, start, end, future_days, seed)
    parts = list(_iter_store_frames(setup))
    history, future, actuals, truth = (
        pd.concat([p[k] for p in parts], ignore_index=True) for k in range(4)
    )
    return RetailPanel(
        history=history,
        future=future,
        future_actuals=actuals,
        truth=truth,
        items=setup.items,
        closures=_closures(setup),
    )


def _open_out(path: str | os.PathLike[str] | None) -> TextIO | None:
    if path is None:
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # newline="" so "\n" is written as-is on every OS (byte-identical files).
    return open(path, "w", encoding="utf-8", newline="")


def write_retail_csv(
    path: str | os.PathLike[str],
    *,
    future_path: str | os.PathLike[str] | None = None,
    actuals_path: str | os.PathLike[str] | None = None,
    truth_path: str | os.PathLike[str] | None = None,
    n_stores: int = 3,
    n_items: int = 10,
    start: str = "2023-01-01",
    end: str = "2025-10-31",
    future_days: int = 28,
    seed: int = 7,
    chunked: bool = True,
) -> dict[str, int]:
    """Write the retail panel to CSV files and return the number of data rows per file.

    Args:
        path: history CSV (columns :data:`RETAIL_COLUMNS`).
        future_path: optional future CSV (columns :data:`RETAIL_FUTURE_COLUMNS`).
        actuals_path: optional future-actuals CSV (``date, store_id, item_id, sales``).
        truth_path: optional truth CSV (``date, store_id, item_id, expected``), full grid of
            history and future.
        n_stores, n_items, start, end, future_days, seed: as in :func:`generate_retail`.
        chunked: stream store by store (memory bounded by one store) when True; build the whole
            panel with :func:`generate_retail` first when False. Both write identical bytes.

    Returns:
        ``{"history": rows, "future": rows, "future_actuals": rows, "truth": rows}`` (0 for files
        not requested).
    """
    targets = {
        "history": path,
        "future": future_path,
        "future_actuals": actuals_path,
        "truth": truth_path,
    }
    counts = dict.fromkeys(targets, 0)
    handles = {name: _open_out(p) for name, p in targets.items()}
    try:
        if chunked:
            setup = _setup(n_stores, n_items, start, end, future_days, seed)
            chunks = _iter_store_frames(setup)
        else:
            panel = generate_retail(n_stores, n_items, start, end, future_days, seed)
            chunks = iter([(panel.history, panel.future, panel.future_actuals, panel.truth)])
        first = True
        for frames in chunks:
            for (name, handle), frame in zip(handles.items(), frames, strict=True):
                if handle is None:
                    continue
                write_frame_csv(frame, handle, decimals=_DECIMALS, header=first)
                counts[name] += len(frame)
            first = False
    finally:
        for handle in handles.values():
            if handle is not None:
                handle.close()
    return counts

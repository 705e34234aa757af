"""Which recipe the data's shape calls for: the panel's, or the small-data one.

One global LightGBM recipe does not fit every shape. On a panel of hundreds of series the
trees learn dynamics shared across series from tens of thousands of rows; on a single series
(or a handful) the same 15 leaves x 400 trees fit the noise of a few hundred rows, and a
growing series drifts above its yearly level, which trees cannot extrapolate. So:

- ``panel``: 15 leaves, 400 trees at learning rate 0.08, 20 rows per leaf; no trend.
- ``small``: 4 leaves, 200 trees at 0.05, 30 rows per leaf, and the level follows the series'
  year-over-year trend (``FeatureConfig.level_trend``, see :class:`trainer.scaling.
  SeasonalScaler`).

The choice (:func:`choose_recipe`) reads the shape of the rows the trees learn from: fewer
than :data:`SMALL_MAX_ROWS` rows in the training window (a single series always is with the
default 730-day ``train_window_days``; so are a few short ones) is ``small``, more is
``panel``. The figures behind both recipes and the threshold are in ``docs/benchmarks.md``.

A recipe only fills the knobs the user left unset (``None`` in the config: a params.json key
set to null or absent from a flat params document, a CLI flag not given): an explicit value,
from ``--params-json`` or a flag, always wins, and ``recipe: panel`` / ``small`` in the config
forces a recipe whatever the shape. :func:`resolve_recipe` is the one place this happens; the
fit logs its choice and the model keeps it (``forecaster.json`` ``training.recipe``).
"""

from __future__ import annotations

__all__ = [
    "AUTO",
    "PANEL",
    "RECIPES",
    "SMALL",
    "SMALL_MAX_ROWS",
    "DataShape",
    "Recipe",
    "choose_recipe",
    "data_shape",
    "resolve",
    "resolve_recipe",
    "upgrade_pre_recipe",
]

import logging
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from sf_contract import Contract
from trainer.config import TrainerConfig
from trainer.errors import TrainerError

log = logging.getLogger(__name__)

AUTO = "auto"
PANEL = "panel"
SMALL = "small"
# Below this many training rows the small-data recipe wins (docs/benchmarks.md: one series of
# 730-1,000 rows and 3 series of ~2,200; the 100-series panel's 73,000 rows want the panel's).
SMALL_MAX_ROWS = 5_000


@dataclass(frozen=True)
class Recipe:
    """The values a recipe gives the knobs the user left unset."""

    params: dict[str, Any]  # LGBMParams fields
    features: dict[str, Any]  # FeatureConfig fields
    summary: str


RECIPES: dict[str, Recipe] = {
    PANEL: Recipe(
        params={
            "n_estimators": 400,
            "learning_rate": 0.08,
            "num_leaves": 15,
            "min_child_samples": 20,
        },
        features={"level_trend": False},
        summary="15 leaves x 400 trees at lr 0.08, 20 rows per leaf",
    ),
    SMALL: Recipe(
        params={
            "n_estimators": 200,
            "learning_rate": 0.05,
            "num_leaves": 4,
            "min_child_samples": 30,
        },
        features={"level_trend": True},
        summary="4 leaves x 200 trees at lr 0.05, 30 rows per leaf, year-over-year level trend",
    ),
}


@dataclass(frozen=True)
class DataShape:
    """What the recipe choice reads: series, and rows inside the training window."""

    n_series: int
    train_rows: int

    @property
    def rows_per_series(self) -> float:
        return self.train_rows / max(self.n_series, 1)


def data_shape(panel: pd.DataFrame, contract: Contract, config: TrainerConfig) -> DataShape:
    """The shape of a prepared panel as the trees will see it (its last ``train_window_days``)."""
    date = contract.date_column
    rows = len(panel)
    if config.train_window_days and rows:
        start = panel[date].max() - pd.Timedelta(days=config.train_window_days - 1)
        rows = int((panel[date] >= start).sum())
    return DataShape(n_series=int(panel["series_id"].nunique()), train_rows=rows)


def choose_recipe(shape: DataShape) -> tuple[str, str]:
    """``(recipe name, why)`` for data of this shape."""
    facts = (
        f"{shape.n_series} series, {shape.train_rows:,} training rows "
        f"({shape.rows_per_series:,.0f} per series)"
    )
    if shape.train_rows < SMALL_MAX_ROWS:
        return SMALL, f"{facts}: fewer than {SMALL_MAX_ROWS:,} rows"
    return PANEL, f"{facts}: at least {SMALL_MAX_ROWS:,} rows"


def resolve_recipe(
    config: TrainerConfig, panel: pd.DataFrame, contract: Contract
) -> tuple[TrainerConfig, dict[str, Any]]:
    """``config`` with its unset knobs filled by the recipe the data calls for, and the facts of
    that choice for the model's metadata; the choice is logged.

    The returned config names its recipe and sets every knob, so resolving it again (e.g. for
    the interval calibration model, which sees fewer rows) keeps the same recipe.
    """
    resolved, info = resolve(config, data_shape(panel, contract, config))
    given = info["given"]
    log.info(
        "recipe %s (%s): %s%s",
        info["name"],
        info["reason"],
        RECIPES[info["name"]].summary,
        f"; kept as given: {', '.join(given)}" if given else "",
    )
    return resolved, info


def resolve(config: TrainerConfig, shape: DataShape) -> tuple[TrainerConfig, dict[str, Any]]:
    """:func:`resolve_recipe` for data of a known shape, without logging."""
    if config.recipe == AUTO:
        name, reason = choose_recipe(shape)
    elif config.recipe in RECIPES:
        name, reason = config.recipe, "set in the trainer config"
    else:
        raise TrainerError(f"recipe must be one of {[AUTO, *RECIPES]}, got '{config.recipe}'")
    recipe = RECIPES[name]
    unset_params = {k: v for k, v in recipe.params.items() if getattr(config.params, k) is None}
    unset_features = {
        k: v for k, v in recipe.features.items() if getattr(config.features, k) is None
    }
    resolved = replace(
        config,
        recipe=name,
        params=replace(config.params, **unset_params),
        features=replace(config.features, **unset_features),
    )
    given = sorted(set(recipe.params) - set(unset_params))
    given += sorted(f"features.{k}" for k in set(recipe.features) - set(unset_features))
    info = {
        "name": name,
        "reason": reason,
        "n_series": shape.n_series,
        "train_rows": shape.train_rows,
        "from_recipe": {**unset_params, **{f"features.{k}": v for k, v in unset_features.items()}},
        "given": given,
    }
    return resolved, info


def upgrade_pre_recipe(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored ``params.json`` from before recipes: the panel recipe was the only one then.

    Its LightGBM values are all there; the knobs added since (the level trend) mean the panel's
    values, so the stored recipe refits as it was trained, whatever the data's shape.
    """
    if "recipe" in doc:
        return doc
    return {**doc, "recipe": PANEL}

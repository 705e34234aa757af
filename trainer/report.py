"""The run report of a backtest: metrics vs the baselines, feature importance and forecast-vs-
actual charts, as PNG files and one self-contained HTML page (``report/report.html``).

matplotlib is imported inside :func:`write_report` so that importing the trainer stays light.
"""

from __future__ import annotations

__all__ = ["MAX_SERIES", "feature_importance", "sample_series", "write_report"]

import base64
import html
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainer.fitting import MODEL_NAME
from trainer.io.files import join_uri, publish_dir
from trainer.model import Forecaster

# Charts for more series would make the page slow to open without saying more.
MAX_SERIES = 6
REPORT_DIR = "report"
_METRICS = ("wape", "mae", "rmse", "mase", "bias", "n")
_TOP_FEATURES = 30


def sample_series(ids: Sequence[object], seed: int, k: int = MAX_SERIES) -> list[str]:
    """Up to ``k`` series ids drawn without replacement; the same ids for the same seed."""
    unique = sorted({str(i) for i in ids})
    if len(unique) <= k:
        return unique
    picked = np.random.default_rng(seed).choice(len(unique), size=k, replace=False)
    return sorted(unique[i] for i in picked)


def feature_importance(model: Forecaster) -> pd.DataFrame:
    """LightGBM total gain per feature of ``model`` (``feature, gain, share``), largest first."""
    # The Forecaster keeps its MLForecast private; the report is its only outside reader.
    models: dict[str, Any] = model._mlf.models_
    booster = models[MODEL_NAME].booster_
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    frame = pd.DataFrame({"feature": booster.feature_name(), "gain": gain})
    total = frame["gain"].sum()
    frame["share"] = frame["gain"] / total if total > 0 else 0.0
    return frame.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def write_report(
    *,
    output_dir: str,
    backtest: Mapping[str, Any],
    gate: Mapping[str, Any],
    predictions: Mapping[str, pd.DataFrame],
    date_column: str = "date",
    model: Forecaster | None = None,
    model_error: str | None = None,
    seed: int = 0,
    max_series: int = MAX_SERIES,
) -> str:
    """Write ``<output_dir>/report/`` (``report.html`` and its ``*.png``); return the page URI.

    ``predictions`` are the backtest's per-window rows by method (``series_id, <date>, cutoff,
    y, y_hat`` and the challenger's ``lower_<l>`` / ``upper_<l>``); ``model`` is the
    challenger's stored model, for its feature importance (``model_error`` says why there is
    none). The series charted are a seeded sample of at most ``max_series``, plus the total.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    challenger = predictions.get("challenger", pd.DataFrame())
    naive = predictions.get("seasonal_naive", pd.DataFrame())
    pngs: dict[str, bytes] = {}
    sections: list[str] = [_header(backtest, gate), _metric_table(backtest)]

    fig = _metric_chart(plt, backtest)
    if fig is not None:
        pngs["metrics.png"] = _png(plt, fig)
        sections.append(_img("metrics.png", pngs["metrics.png"], "Gate metric by method"))

    sections.append("<h2>Feature importance (LightGBM gain, challenger model)</h2>")
    if model is None:
        sections.append(f"<p>Not available: {html.escape(model_error or 'no model')}.</p>")
    else:
        imp = feature_importance(model)
        pngs["feature_importance.png"] = _png(plt, _importance_chart(plt, imp))
        sections.append(
            _img("feature_importance.png", pngs["feature_importance.png"], "Feature gain")
        )
        sections.append(_importance_table(imp))

    sections.append("<h2>Forecast vs actual on the backtest windows</h2>")
    if len(challenger):
        levels = sorted(int(c.split("_")[1]) for c in challenger.columns if c.startswith("lower_"))
        total = _total(challenger, naive, date_column, levels)
        fig = _forecast_chart(plt, total, _naive_of(total), date_column, levels, "Total")
        pngs["total.png"] = _png(plt, fig)
        note = (
            " The total's band is the sum of the series' bounds: wider than an interval "
            "calibrated for the total."
            if levels and challenger["series_id"].nunique() > 1
            else ""
        )
        sections.append(
            f"<p>Challenger forecast per window (line), "
            f"{'/'.join(map(str, levels)) + '% intervals (bands), ' if levels else ''}"
            f"seasonal naive (dashed) and actuals (black).{note}</p>"
        )
        sections.append(_img("total.png", pngs["total.png"], "Total"))
        ids = sample_series(challenger["series_id"], seed, max_series)
        for i, sid in enumerate(ids, 1):
            rows = challenger[challenger["series_id"].astype(str) == sid]
            base = naive[naive["series_id"].astype(str) == sid] if len(naive) else naive
            name = f"series_{i:02d}.png"
            pngs[name] = _png(plt, _forecast_chart(plt, rows, base, date_column, levels, sid))
            sections.append(_img(name, pngs[name], f"Series {sid}"))
    else:
        sections.append("<p>No challenger forecasts to chart.</p>")

    page = _page("Backtest report", "\n".join(sections))
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        for name, data in pngs.items():
            with open(os.path.join(tmp, name), "wb") as handle:
                handle.write(data)
        with open(os.path.join(tmp, "report.html"), "w", encoding="utf-8") as handle:
            handle.write(page)
        target = join_uri(output_dir, REPORT_DIR)
        publish_dir(tmp, target)
    return join_uri(target, "report.html")


def _naive_of(total: pd.DataFrame) -> pd.DataFrame:
    return total.dropna(subset=["y_naive"]).rename(columns={"y_naive": "y_hat"})


def _total(
    frame: pd.DataFrame, naive: pd.DataFrame, date: str, levels: Sequence[int]
) -> pd.DataFrame:
    cols = ["y", "y_hat", *[f"{s}_{lv}" for lv in levels for s in ("lower", "upper")]]
    total = frame.groupby(["cutoff", date], as_index=False)[cols].sum(min_count=1)
    if len(naive):
        base = naive.groupby(["cutoff", date], as_index=False)["y_hat"].sum()
        total = total.merge(
            base.rename(columns={"y_hat": "y_naive"}), on=["cutoff", date], how="left"
        )
    else:
        total["y_naive"] = np.nan
    return total


def _forecast_chart(
    plt: Any, rows: pd.DataFrame, naive: pd.DataFrame, date: str, levels: Sequence[int], title: str
) -> Any:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    actual = rows.groupby(date)["y"].first().sort_index()
    ax.plot(actual.index, actual.to_numpy(), color="black", lw=1.2, label="actual")
    for n, (cutoff, win) in enumerate(rows.sort_values(date).groupby("cutoff", sort=True)):
        first = n == 0
        for lv, alpha in zip(sorted(levels, reverse=True), (0.15, 0.3, 0.45), strict=False):
            ax.fill_between(
                win[date], win[f"lower_{lv}"], win[f"upper_{lv}"], color="tab:blue",
                alpha=alpha, lw=0, label=f"{lv}% interval" if first else None,
            )  # fmt: skip
        ax.plot(win[date], win["y_hat"], color="navy", lw=1.4,
                label="challenger" if first else None)  # fmt: skip
        ax.axvline(cutoff, color="grey", lw=0.6, ls=":")
    if len(naive):
        for n, (_, win) in enumerate(naive.sort_values(date).groupby("cutoff", sort=True)):
            ax.plot(win[date], win["y_hat"], color="tab:orange", lw=1, ls="--",
                    label="seasonal naive" if n == 0 else None)  # fmt: skip
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry per kind, not per window
    ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=7, ncol=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _metric_chart(plt: Any, backtest: Mapping[str, Any]) -> Any:
    metric = backtest.get("metric", "wape")
    scores = {
        name: item.get("overall", {}).get(metric)
        for name, item in backtest.get("methods", {}).items()
    }
    scores = {k: float(v) for k, v in scores.items() if v is not None and np.isfinite(v)}
    if not scores:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(scores)))
    ax.barh(list(scores), list(scores.values()), color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric.upper()} (lower is better)")
    fig.tight_layout()
    return fig


def _importance_chart(plt: Any, imp: pd.DataFrame) -> Any:
    top = imp.head(20)
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.28 * max(len(top), 1)))
    ax.barh(top["feature"], top["share"], color="tab:green")
    ax.invert_yaxis()
    ax.set_xlabel("share of total gain")
    fig.tight_layout()
    return fig


def _png(plt: Any, fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _img(name: str, data: bytes, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    caption = f"<figcaption>{html.escape(name)}</figcaption>"
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}">{caption}</figure>'


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return f"{value:.4g}" if np.isfinite(value) else "–"


def _header(backtest: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    verdict = "PASSED" if gate.get("passed") else "FAILED"
    windows = ", ".join(w["cutoff"] for w in backtest.get("windows", []))
    return (
        f"<h1>Backtest report</h1><p>Cut-off {html.escape(str(backtest.get('cutoff_date')))}, "
        f"{backtest.get('n_windows')} window(s) of {backtest.get('horizon')} days "
        f"(cut-offs {html.escape(windows)}).</p>"
        f"<p class='gate'><b>Gate {verdict}</b> ({html.escape(str(gate.get('champion_mode')))}): "
        f"{html.escape(str(gate.get('reason', '')))}</p>"
    )


def _metric_table(backtest: Mapping[str, Any]) -> str:
    metric = backtest.get("metric", "wape")
    head = "".join(f"<th>{m.upper()}</th>" for m in _METRICS)
    rows = []
    for name, item in backtest.get("methods", {}).items():
        overall = item.get("overall", {})
        cells = "".join(f"<td>{_fmt(overall.get(m))}</td>" for m in _METRICS)
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{_fmt(item.get('n_windows'))}</td>{cells}</tr>"
        )
        same = item.get("challenger_same_rows")
        if same:
            cells = "".join(f"<td>{_fmt(same.get(m))}</td>" for m in _METRICS)
            rows.append(
                f"<tr><td>challenger on {html.escape(name)}'s rows</td>"
                f"<td>{_fmt(item.get('n_windows'))}</td>{cells}</tr>"
            )
    return (
        f"<h2>Backtest metrics (gate metric: {html.escape(metric.upper())}, lower is better)</h2>"
        f"<table class='metrics'><tr><th>method</th><th>windows</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
    )


def _importance_table(imp: pd.DataFrame) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(r.feature))}</td><td>{_fmt(r.gain)}</td>"
        f"<td>{r.share:.1%}</td></tr>"
        for r in imp.head(_TOP_FEATURES).itertuples()
    )
    more = (
        f"<p>{len(imp) - _TOP_FEATURES} more feature(s) not listed.</p>"
        if len(imp) > _TOP_FEATURES
        else ""
    )
    return (
        "<table class='importance'><tr><th>feature</th><th>gain</th><th>share</th></tr>"
        f"{rows}</table>{more}"
    )


def _page(title: str, body: str) -> str:
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}figure{margin:1em 0}figcaption{font-size:small;color:#666}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{body}</body></html>\n"
    )

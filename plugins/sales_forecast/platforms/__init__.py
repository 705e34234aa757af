"""Platforms: the same interfaces (store, warehouse, registry, runner, publisher, deployer)
implemented locally and on GCP, chosen by one setting (``SF_PLATFORM``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sales_forecast.config import Settings
from sales_forecast.platforms.base import Platform
from sales_forecast.run_context import RunContext, make_run_context, render_params

__all__ = ["open_run"]

Render = Callable[[str, dict[str, Any]], Any]


def open_run(
    settings: Settings, context: Mapping[str, Any], render: Render
) -> tuple[RunContext, Platform]:
    """The run's context and the configured platform, scoped to the run's dataset contract.

    ``render`` renders a template with the task's context (the task's own ``render_template``):
    string params may be templates, and on GCP so are the settings (Airflow Variables).
    Imports only what the chosen platform needs.
    """
    if settings.platform == "gcp":
        from sales_forecast.platforms.gcp.run import resolve_gcp_run

        run = resolve_gcp_run(settings, context, render)
        return run.ctx, run.platform
    from sales_forecast.platforms.local import build_local_platform
    from sales_forecast.steps import load_run_contract

    run_id, when, params = render_params(context, render)
    ctx = make_run_context(
        run_id=run_id,
        logical_date=when,
        params=params,
        settings=settings,
        runs_root=str(settings.runs_root),
    )
    return ctx, build_local_platform(settings, load_run_contract(ctx).name, ctx.run_id)

"""Platforms: bundles of warehouse, job runner, registry and deployer behind small interfaces."""

from __future__ import annotations

from sales_forecast.config import Settings
from sales_forecast.platforms.base import Platform

__all__ = ["build_platform"]


def build_platform(settings: Settings, contract_name: str | None = None) -> Platform:
    """The platform chosen by ``settings.platform`` (imports only what that platform needs),
    with its tables and model registry entry scoped to the dataset contract."""
    if settings.platform == "local":
        from sales_forecast.platforms.local import build_local_platform

        return build_local_platform(settings, contract_name or settings.default_dataset)
    raise NotImplementedError(
        f"platform {settings.platform!r} runs its steps as provider operators, "
        "not through the Python step functions"
    )

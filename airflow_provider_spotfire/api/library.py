"""Library REST API v1 (SBDF upload): requests, response models and the hook methods built on them."""

from __future__ import annotations

from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase


class LibraryHookMixin(SpotfireHookBase):
    """Library REST API v1 (SBDF upload) methods of :class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireHook`."""


class LibraryAsyncHookMixin(SpotfireAsyncHookBase):
    """Library REST API v1 (SBDF upload) methods of :class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireAsyncHook`."""

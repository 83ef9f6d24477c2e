"""Automation Services REST API v1: requests, response models and the hook methods built on them."""

from __future__ import annotations

from airflow_provider_spotfire.hooks.base import SpotfireAsyncHookBase, SpotfireHookBase


class AutomationHookMixin(SpotfireHookBase):
    """Automation Services REST API v1 methods of :class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireHook`."""


class AutomationAsyncHookMixin(SpotfireAsyncHookBase):
    """Automation Services REST API v1 methods of :class:`~airflow_provider_spotfire.hooks.spotfire.SpotfireAsyncHook`."""

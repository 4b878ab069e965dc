"""Tests that need something the machine may lack: skip on a laptop, fail in CI.

A skipped test in CI is a silent hole (the browser test once "passed" for
weeks on a runner without Chromium), so under ``CI=true`` a missing
requirement is a failure that says what to install.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(available: object, what: str) -> None:
    """Skip the calling test when ``available`` is falsy, or fail it when running in CI."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} (CI=true: a missing requirement fails instead of skipping)", pytrace=False)
    pytest.skip(what)

"""Shared helpers: where the sample data lives, and CI's no-silent-skip rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, why: str) -> None:
    """Skip locally when something optional is missing; in CI a missing piece fails."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


def shared_dir() -> Path:
    return Path(os.environ.get("KPI_SHARED_DIR", REPO.parent / "shared"))


def crm_export_dir() -> Path:
    """The sample CRM export shipped with the project (examples/, see its SOURCE.md)."""
    return REPO / "examples" / "crm-sales-opportunities"

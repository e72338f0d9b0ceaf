"""Grafana dashboards as code (grafana-foundation-sdk): one board per role, written as JSON files."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from exporters.dashboards.boards import BOARDS
from exporters.dashboards.panels import Thresholds
from exporters.dashboards.sdk import JSONEncoder

PACKAGED_THRESHOLDS = ("kpi_state", "defaults/thresholds.yaml")


class BoardsError(ValueError):
    """A thresholds file the boards cannot be built from; the message says which and why."""


def packaged_thresholds() -> Path | None:
    """The thresholds file shipped with the package (the one a worker uses when none is set)."""
    package, name = PACKAGED_THRESHOLDS
    path = resources.files(package).joinpath(name)
    return Path(str(path)) if path.is_file() else None


def read_thresholds(path: Path) -> Thresholds:
    """The KPI part of a thresholds file (its full check is `kpi-pipeline thresholds check`)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise BoardsError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BoardsError(f"{path}{line}: not valid YAML") from None
    if not isinstance(document, dict) or not isinstance(document.get("kpis", {}), dict):
        raise BoardsError(f"{path}: expected a mapping with a `kpis` mapping (see the thresholds file format)")
    return Thresholds.from_document(document)


def build_all(thresholds: Thresholds, currency: str = "EUR") -> dict[str, dict[str, Any]]:
    """Every board as the JSON object Grafana loads, by role."""
    encoder = JSONEncoder(sort_keys=True)
    return {
        role: json.loads(encoder.encode(build(thresholds, currency).build()))
        for role, build in BOARDS.items()
    }


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out_dir: Path, thresholds: Thresholds, currency: str = "EUR") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for role, board in build_all(thresholds, currency).items():
        path = out_dir / f"kpi-{role}.json"
        path.write_text(render(board), encoding="utf-8")
        written.append(path)
    return written

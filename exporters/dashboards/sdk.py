"""The grafana-foundation-sdk names the boards use, imported without its v2-schema notices.

The SDK prefers its v2 dashboard schema, which Grafana loads from files only behind feature
toggles; the v1 schema is what Grafana 10 to 12 provision from a directory, so we use v1.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
    from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models.dashboard import (
        Threshold,
        ThresholdsMode,
        VariableRefresh,
        VariableSort,
    )
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

__all__ = [
    "JSONEncoder", "PromQueryFormat", "Threshold", "ThresholdsMode", "VariableRefresh", "VariableSort",
    "bargauge", "cogbuilder", "common", "common_builders", "dashboard", "prometheus", "stat", "table",
    "timeseries",
]

"""The project's errors; InvalidEvent carries the DLQ reason code of contract section 3."""

from __future__ import annotations


class KpiError(Exception):
    """Root of every error the pipeline raises on purpose."""


class InvalidEvent(KpiError, ValueError):
    """An input record that cannot be used; `reason` is a fixed DLQ code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

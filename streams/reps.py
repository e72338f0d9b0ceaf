"""The rep → team → region mapping: from a CSV file at start-up and from the sales.reps topic."""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from kpi_state.errors import InvalidEvent, KpiError
from kpi_state.events import RepUpserted
from streams.decode import Decoder
from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("rep_id", "team_id", "region_id")


class RepsFileError(KpiError, ValueError):
    """A reps file that cannot be used, with the line that shows why."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def read_reps_file(path: Path) -> list[tuple[str, str, str]]:
    """(rep_id, team_id, region_id) rows of a CSV with those columns (extra columns ignored)."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise RepsFileError(path, 0, f"cannot open: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RepsFileError(path, 1, f"missing column(s) {', '.join(missing)}")
        rows, seen = [], {}
        try:
            for record in reader:
                line = reader.line_num
                values = tuple((record.get(c) or "").strip() for c in REQUIRED_COLUMNS)
                empty = [c for c, v in zip(REQUIRED_COLUMNS, values) if not v]
                if empty:
                    raise RepsFileError(path, line, f"empty {', '.join(empty)}")
                if values[0] in seen:
                    raise RepsFileError(path, line, f"rep {values[0]} already on line {seen[values[0]]}")
                seen[values[0]] = line
                rows.append(values)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise RepsFileError(path, reader.line_num, f"not a CSV file: {exc}") from None
    return rows


class RepsReader:
    """Reads the whole compacted sales.reps topic on every worker, then follows it.

    Every worker needs every rep's placement to roll up correctly, so this reader
    assigns itself all partitions instead of joining the consumer group. Records it
    cannot decode are ignored here; the group's agent sends them to the DLQ once.
    """

    def __init__(
        self, settings: Settings, decoder: Decoder, on_rep: Callable[[RepUpserted], None]
    ) -> None:
        self.settings = settings
        self.decoder = decoder
        self.on_rep = on_rep
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **aiokafka_kwargs(self.settings), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            # The worker created the topic before starting; a metadata refresh finds it.
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.settings.topic_reps) or {0}
            tps = [TopicPartition(self.settings.topic_reps, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            if all(offset == 0 for offset in end.values()):
                self.caught_up.set()
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for messages in batch.values():
                    for message in messages:
                        self._apply(message.value)
                if not self.caught_up.is_set():
                    positions = {tp: await consumer.position(tp) for tp in tps}
                    if all(positions[tp] >= end[tp] for tp in tps):
                        self.caught_up.set()
        finally:
            await consumer.stop()

    def _apply(self, raw: bytes | None) -> None:
        try:
            event = self.decoder.decode(raw)
        except InvalidEvent:
            return
        if isinstance(event, RepUpserted):
            self.on_rep(event)

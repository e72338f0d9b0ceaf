"""Which entity an event belongs to: the key the pipeline repartitions by and stores state under."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any, get_args

import msgspec

from kpi_state.events import (
    CreditNoteIssued,
    Event,
    InvoiceIssued,
    OpportunityCreated,
    OpportunityLost,
    OpportunityStageChanged,
    OpportunityWon,
    PaymentReceived,
    SpendRecorded,
)

_OPPORTUNITY = (OpportunityCreated, OpportunityStageChanged, OpportunityWon, OpportunityLost)
_CUSTOMER = (InvoiceIssued, PaymentReceived, CreditNoteIssued)


def entity_key(event: Event) -> bytes:
    """`opp:…`, `cust:…`, `spend:…`, `rep:…` (activity and rep records)."""
    # One dict lookup by type instead of isinstance checks: every event is keyed once.
    return _KEY_OF.get(type(event), _rep_key)(event)


def _opportunity_key(event: Any) -> bytes:
    return b"opp:" + event.opportunity_id.encode()


def _customer_key(event: Any) -> bytes:
    return b"cust:" + event.customer_id.encode()


def _spend_key(event: Any) -> bytes:
    return b"spend:" + (event.team_id or "-").encode()


def _rep_key(event: Any) -> bytes:
    return b"rep:" + event.rep_id.encode()


# Every concrete event type: the classes named above, every other one a rep's.
_KEY_OF: dict[type, Callable[[Any], bytes]] = {
    **dict.fromkeys(_OPPORTUNITY, _opportunity_key),
    **dict.fromkeys(_CUSTOMER, _customer_key),
    SpendRecorded: _spend_key,
    **{kind: _rep_key for kind in get_args(Event) if kind not in (*_OPPORTUNITY, *_CUSTOMER, SpendRecorded)},
}


@lru_cache(maxsize=4096)  # asked for every record by every step: a few partitions, each once
def partition_name(topic: str, partition: int) -> str:
    """`topic|partition`: how the lateness check, the watermark and replay detection name an input partition."""
    return sys.intern(f"{topic}|{partition}")


_encoder = msgspec.msgpack.Encoder()


def fingerprint(event: Event) -> int:
    """A stable 64-bit digest of the decoded content (same on every worker and restart)."""
    return fingerprint_of_encoded(_encoder.encode(event))


def fingerprint_of_encoded(encoded: bytes | memoryview | msgspec.Raw) -> int:
    """`fingerprint` of the event whose msgpack encoding (this module's encoder's) is `encoded`.

    msgpack encoding is canonical for our events (fields in declaration order, decimals as
    their string), so the bytes an edge wrote give the fingerprint the decoded event would.
    """
    digest = hashlib.blake2b(encoded, digest_size=8).digest()  # type: ignore[arg-type]
    return int.from_bytes(digest, "big", signed=True)

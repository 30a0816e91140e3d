"""Inbound figures from the ledger: calls per result and the queue's service level, per DID.

The same definitions as the live queue (:meth:`InboundQueue.figures`): a caller was *offered*
to the queue when their ledger row has a queue wait; answered = ``human``; abandoned in queue =
``abandoned``; the rest of the offered left by choice or timeout (callback, voicemail).  Service
level = answered within the threshold / (answered + those who abandoned or left after it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dialer.db.models import Call
from dialer.domain.inbound_queue import percentile

if TYPE_CHECKING:
    from dialer.db.database import Database


@dataclass(frozen=True, slots=True)
class InboundRow:
    """What the report needs of one inbound ledger row."""

    did: str
    result: str
    wait_seconds: float | None


def inbound_figures(rows: Iterable[InboundRow], service_level_seconds: float) -> dict[str, Any]:
    """Totals for ``rows``: calls, results, and the queue figures."""
    rows = list(rows)
    results: dict[str, int] = {}
    for r in rows:
        results[r.result or "open"] = results.get(r.result or "open", 0) + 1
    queued = [r for r in rows if r.wait_seconds is not None]
    answered = sorted(r.wait_seconds or 0.0 for r in queued if r.result == "human")
    abandoned = [r for r in queued if r.result == "abandoned"]
    late = sum(
        1 for r in queued if r.result != "human" and (r.wait_seconds or 0.0) > service_level_seconds
    )
    within = sum(1 for w in answered if w <= service_level_seconds)
    denominator = len(answered) + late
    return {
        "calls": len(rows),
        "results": dict(sorted(results.items())),
        "offered": len(queued),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "left": len(queued) - len(answered) - len(abandoned),
        "average_wait": sum(answered) / len(answered) if answered else 0.0,
        "p90_wait": percentile(answered, 0.9),
        "service_level": within / denominator if denominator else 1.0,
        "service_level_seconds": service_level_seconds,
    }


def by_did(rows: Sequence[InboundRow], service_level_seconds: float) -> dict[str, dict[str, Any]]:
    """:func:`inbound_figures` per DID, plus ``"all"``."""
    out = {"all": inbound_figures(rows, service_level_seconds)}
    for did in sorted({r.did for r in rows}):
        out[did] = inbound_figures([r for r in rows if r.did == did], service_level_seconds)
    return out


async def load_inbound(db: Database, start: datetime, end: datetime) -> list[InboundRow]:
    """Inbound ledger rows that started in [start, end)."""
    async with db.read() as s:
        got = await s.execute(
            select(Call.did, Call.result, Call.wait_seconds).where(
                Call.direction == "inbound",
                Call.originated_at >= start,
                Call.originated_at < end,
            )
        )
        return [InboundRow(r.did, r.result or "", r.wait_seconds) for r in got.all()]


def report(settings: Any, start: datetime, end: datetime, as_json: bool = False) -> list[str]:
    """``dialer ivr report``: the figures for [start, end) as lines of text (or one JSON)."""
    import asyncio
    import json

    from dialer.db.database import Database

    async def go() -> list[InboundRow]:
        db = Database.from_settings(settings)
        try:
            return await load_inbound(db, start, end)
        finally:
            await db.close()

    figures = by_did(asyncio.run(go()), settings.inbound.service_level_seconds)
    if as_json:
        return [json.dumps(figures, indent=2)]
    lines = [f"inbound calls {start.isoformat()} .. {end.isoformat()}"]
    for did, f in figures.items():
        lines.append(
            f"{did:>12}: {f['calls']} calls, queue offered {f['offered']}, answered "
            f"{f['answered']}, abandoned {f['abandoned']}, left {f['left']}, wait avg "
            f"{f['average_wait']:.1f} s p90 {f['p90_wait']:.1f} s, service level "
            f"{f['service_level']:.1%} in {f['service_level_seconds']:g} s"
        )
        lines.append(
            " " * 14 + "results: " + ", ".join(f"{k} {v}" for k, v in f["results"].items())
        )
    return lines

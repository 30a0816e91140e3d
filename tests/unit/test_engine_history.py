"""The pacer's abandonment ledger keeps its rolling windows across controller restarts and days.

The engine reads each campaign's live answers of the last 30 days from the record before it
paces the campaign, and hands one day's ledger to the next day's pacer.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager

import pytest

from dialer.engine.core import Engine
from dialer.engine.ports import CampaignConfig
from dialer.pacing import CallAbandoned, CallAnswered

from .engine_fakes import FakeAmi, FakeStore, running
from .test_engine import ShiftClock, login, settings, until

HOUR = 3600.0


def _engine(store: FakeStore, mode: str = "predictive") -> AbstractAsyncContextManager[Engine]:
    store.campaigns_[1] = CampaignConfig(1, "spring", dial_mode=mode, wrapup_seconds=5)
    store.leads = {i: f"+9155510{i:02d}" for i in range(1, 6)}
    return running(Engine(settings(), store, FakeAmi(), clock=ShiftClock()), store)


@pytest.mark.parametrize("mode", ["predictive", "progressive"])
async def test_a_restarted_controller_paces_on_the_month_it_finds_in_the_record(mode: str) -> None:
    store = FakeStore()
    # Yesterday afternoon and ten days ago: 400 live answers, 11 of them abandoned.
    store.history[1] = (
        [(20 * HOUR, False)] * 190
        + [(20 * HOUR, True)] * 6
        + [(240 * HOUR, False)] * 199
        + [(240 * HOUR, True)] * 5
    )
    async with _engine(store, mode) as engine:
        await login(engine)
        run = engine.campaigns[1]
        await until(engine, lambda: run.pacer is not None)
        view = run.pacer.ledger.view()
        assert (view.last_30d.live, view.last_30d.abandoned) == (400, 11)
        assert (view.last_24h.live, view.last_24h.abandoned) == (196, 6)
        assert (view.today.live, view.today.abandoned) == (0, 0)


async def test_the_next_days_pacer_inherits_the_rolling_windows() -> None:
    store = FakeStore()
    store.history[1] = [(2 * HOUR, False)] * 50 + [(2 * HOUR, True)]
    async with _engine(store) as engine:
        await login(engine)
        run = engine.campaigns[1]
        await until(engine, lambda: run.pacer is not None)
        first = run.pacer
        now = engine.clock.now()
        first.observe(CallAnswered(at=now, ring_seconds=5.0, live=True))
        first.observe(CallAbandoned(at=now, wait_seconds=2.0))
        run.day = "2000-01-01"  # as if midnight had passed in the campaign's zone
        second = engine._pacer_for(run)
        assert second is not first
        view = second.ledger.view()
        assert (view.today.live, view.today.abandoned) == (0, 0)
        assert (view.last_30d.live, view.last_30d.abandoned) == (52, 2)


class _BrokenHistory(FakeStore):
    async def live_answers(self, campaign_id: int) -> list[tuple[float, bool]]:
        raise OSError("record unreachable")


async def test_an_unreadable_history_is_said_and_pacing_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _BrokenHistory()
    async with _engine(store, "progressive") as engine:
        with caplog.at_level(logging.WARNING, logger="dialer.engine"):
            await login(engine)
            await until(engine, lambda: len(engine.ami.originates()) >= 1)  # type: ignore[attr-defined]
        assert "abandonment history not read" in caplog.text
        assert engine.campaigns[1].history == ()

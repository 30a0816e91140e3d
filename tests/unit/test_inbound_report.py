"""Inbound report figures from ledger rows: the live queue's definitions, per DID."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dialer.cli import main
from dialer.reports.inbound import InboundRow, by_did, inbound_figures


def test_figures_follow_the_queue_definitions() -> None:
    rows = [
        InboundRow("100", "human", 5.0),
        InboundRow("100", "human", 30.0),  # answered late
        InboundRow("100", "abandoned", 3.0),  # hung up early: in neither part of the SL
        InboundRow("200", "abandoned", 45.0),  # hung up late: counts against the SL
        InboundRow("200", "ivr_completed", 180.0),  # left the queue (callback/voicemail), late
        InboundRow("200", "ivr_completed", None),  # never queued
        InboundRow("200", "ivr_hangup", None),
    ]
    f = inbound_figures(rows, 20.0)
    assert f["calls"] == 7 and f["offered"] == 5
    assert (f["answered"], f["abandoned"], f["left"]) == (2, 2, 1)
    assert f["average_wait"] == 17.5 and f["p90_wait"] == 30.0
    assert f["service_level"] == 1 / 4  # 1 within / (2 answered + 2 late unanswered)
    assert f["results"] == {"abandoned": 2, "human": 2, "ivr_completed": 2, "ivr_hangup": 1}
    per = by_did(rows, 20.0)
    assert set(per) == {"all", "100", "200"} and per["100"]["offered"] == 3


def test_no_calls_is_a_clean_report() -> None:
    f = inbound_figures([], 20.0)
    assert f["calls"] == 0 and f["service_level"] == 1.0 and f["p90_wait"] == 0.0


def test_cli_report_on_an_empty_ledger(tmp_path: Path) -> None:
    env = {"DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"}
    runner = CliRunner()
    up = runner.invoke(main, ["db", "upgrade"], env=env)
    assert up.exit_code == 0, up.output
    got = runner.invoke(main, ["ivr", "report", "--day", "2026-11-30"], env=env)
    assert got.exit_code == 0, got.output
    assert "all: 0 calls, queue offered 0" in got.output
    bad = runner.invoke(main, ["ivr", "report", "--day", "30/11"], env=env)
    assert bad.exit_code == 2 and "is not a date" in bad.output

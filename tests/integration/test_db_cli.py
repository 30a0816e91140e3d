"""The db, campaign, leads, dnc and agents commands, end to end through click."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main


@pytest.fixture
def dialer(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `dialer ...` against a fresh database; returns (exit code, output)."""
    runner = CliRunner()
    env = {"DIALER_DATABASE_URL": db_url, "DIALER_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")

    def run(*args: str, input: str | None = None) -> tuple[int, str]:
        result = runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)
        return result.exit_code, result.output

    return run


def test_cli_flow(dialer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = dialer("campaign", "list")
    assert code == 1 and "dialer db upgrade" in out
    assert dialer("db", "upgrade")[0] == 0
    code, out = dialer("db", "current")
    assert code == 0 and "revision 0003" in out
    code, out = dialer(
        "campaign",
        "create",
        "spring",
        "--mode",
        "progressive",
        "--hours",
        "10:00-20:00",
        "--retry",
        "busy=30m/4",
        "--status",
        "running",
    )
    assert code == 0, out
    code, out = dialer("campaign", "set", "spring", "ratio=2", "--amd", "off")
    assert code == 0, out
    code, out = dialer("campaign", "set", "spring", "calling_start=23:00")
    assert code == 1 and "calling_start must be before calling_end" in out
    code, out = dialer("campaign", "show", "spring", "--json")
    assert code == 0 and '"amd_action": "off"' in out and '"delay_minutes": 30' in out
    assert '"calling_start": "10:00"' in out
    assert dialer("dnc", "add", "9876500003", "--source", "office")[0] == 0
    code, out = dialer("dnc", "check", "+919876500003")
    assert code == 1 and "office" in out
    assert dialer("dnc", "check", "9876500004")[0] == 0
    src = tmp_path / "leads.csv"
    src.write_text(
        "Mobile,Name\n9876500001,राम\n9876500002,=1+1\n9876500003,dnc\nx,bad\n", encoding="utf-8"
    )
    code, out = dialer("leads", "import", "spring", str(src), "--default-region", "IN")
    assert code == 0 and "4 rows, 2 imported, 2 rejected" in out
    assert (tmp_path / "leads.rejected.csv").exists()
    code, out = dialer("leads", "export", "spring")
    assert code == 0 and "राम" in out and "'=1+1" in out
    code, out = dialer("campaign", "list")
    assert code == 0 and "spring" in out
    code, out = dialer("agents", "add", "1001", "--name", "Asha", input="2468\n2468\n")
    assert code == 0 and "2468" not in out
    staff = tmp_path / "staff.csv"
    staff.write_text("number,name\n2001,A\n2002,B\n")
    code, out = dialer("agents", "import", str(staff))
    assert code == 0 and "2 PINs were generated" in out
    pins = tmp_path / "staff.pins.csv"
    assert stat.S_IMODE(os.stat(pins).st_mode) == 0o600
    assert dialer("agents", "set-pin", "1001", "--pin", "13579")[0] == 0
    assert dialer("agents", "disable", "1001")[0] == 0
    code, out = dialer("agents", "disable", "4242")
    assert code == 1 and "no agent" in out


@pytest.mark.slow
def test_bench_db_prints_figures(tmp_path: Path) -> None:
    (tmp_path / "none.toml").write_text("")
    env = {
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'main.db'}",
        "DIALER_CONFIG": str(tmp_path / "none.toml"),
    }
    result = CliRunner().invoke(
        main,
        ["bench", "db", "--leads", "1000", "--seconds", "0.5"],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "leads import: 1000 rows" in out and "980 imported, 20 rejected" in out
    assert "0 handed out twice" in out and "records written/s" in out and "writer/baseline" in out
    assert not (tmp_path / "main.db").exists()  # the bench never touches the real database

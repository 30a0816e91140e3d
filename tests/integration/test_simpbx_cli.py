"""``dialer sim-pbx`` as a command: options, refusals, a short run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "dialer.toml"
    path.write_text("")
    return path


def run(config: Path, *args: str, secret: str | None = "cli-secret") -> tuple[int, str]:
    env = {"DIALER_AMI_SECRET": secret} if secret is not None else {"DIALER_AMI_SECRET": ""}
    result = CliRunner().invoke(main, ["--config", str(config), "sim-pbx", *args], env=env)
    return result.exit_code, result.output


def test_short_run_prints_where_it_listens_and_its_counters(config: Path, tmp_path: Path) -> None:
    agents = tmp_path / "agents.csv"
    agents.write_text("agent_number,pin,seat\n1001,4321,seat001\n")
    code, out = run(
        config,
        "--listen",
        "127.0.0.1:0",
        "--agi",
        "127.0.0.1:1",
        "--duration",
        "0.3",
        "--agent",
        "1002:1111:seat002",
        "--agents-file",
        str(agents),
        "--speed",
        "5",
    )
    assert code == 0, out
    first, _, rest = out.partition("\n")
    assert first.startswith("sim-pbx: AMI on 127.0.0.1:") and "2 agents" in first
    assert "cli-secret" not in out  # never print the secret
    stats = json.loads(rest)
    assert set(stats["agents"]) == {"1001", "1002"}


@pytest.mark.parametrize(
    ("args", "secret", "message"),
    [
        ((), None, "set the AMI secret first"),
        (("--listen", "10.1.2.3:5038"), "x", "only binds/connects to loopback"),
        (("--agent", "1001:4321"), "x", "AGENT_NUMBER:PIN:SEAT"),
        (("--listen", "nonsense"), "x", "HOST:PORT"),
    ],
)
def test_refusals(config: Path, args: tuple[str, ...], secret: str | None, message: str) -> None:
    code, out = run(config, *args, "--duration", "0.1", secret=secret)
    assert code != 0 and message in out


def test_bad_profile_is_one_line(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[called]\nnope = 1\n")
    code, out = run(config, "--profile", str(bad), "--duration", "0.1")
    assert code != 0 and "called.nope: unknown setting" in out

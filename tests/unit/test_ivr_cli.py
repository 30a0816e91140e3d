"""`dialer ivr check`: a clear verdict on a flow file, from the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dialer.cli import main

BAD = """
languages = ["en"]
[prompts.en]
p = "hello"
[dids.default]
flow = "main"
[flows.main]
start = "menu"
[flows.main.nodes.menu]
type = "menu"
prompt = "p"
choices = { "1" = "sales" }
"""

GOOD_YAML = """
languages: [en]
prompts: {en: {p: hello}}
dids: {"5551000": {flow: main}}
flows:
  main:
    start: menu
    nodes:
      menu: {type: menu, prompt: p, choices: {"1": bye}, on_failure: bye}
      bye: {type: hangup}
"""


def test_bad_flow_file_fails_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "flows.toml"
    path.write_text(BAD)
    result = CliRunner().invoke(main, ["ivr", "check", str(path)])
    assert result.exit_code == 1
    assert "flow 'main', node 'menu', key 'choices.1': no node named 'sales'" in result.output
    assert "flow 'main', node 'menu', key 'on_failure': required for a menu node" in result.output


def test_good_yaml_file_shows_the_silent_path(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(GOOD_YAML)
    result = CliRunner().invoke(main, ["ivr", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "OK - 1 flow(s), 2 node(s)" in result.output
    assert "5551000 (open now), silent caller: menu -> bye" in result.output


def test_shipped_example_is_the_default() -> None:
    result = CliRunner().invoke(main, ["ivr", "check"], env={"DIALER_INBOUND_FLOWS_FILE": ""})
    assert result.exit_code == 0, result.output
    assert "default_ivr.toml (shipped): OK" in result.output


def test_wrong_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flows.txt"
    path.write_text(GOOD_YAML)
    result = CliRunner().invoke(main, ["ivr", "check", str(path)])
    assert result.exit_code == 1 and "must end in .toml, .yaml or .yml" in result.output

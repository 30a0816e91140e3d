"""`dialer ami decode` and `dialer bench ami` from the command line."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from dialer.bench_ami import build_capture, ours_all_headers, ours_route, panoramisk_parse
from dialer.cli import main
from tests.conftest import TRACES


def test_ami_decode_prints_one_json_object_per_message() -> None:
    result = CliRunner().invoke(
        main, ["ami", "decode", str(TRACES / "07-coreshowchannels-live.ami")]
    )
    assert result.exit_code == 0, result.output
    objs = [json.loads(line) for line in result.output.splitlines()]
    assert objs[0] == {"type": "banner", "name": "Asterisk Call Manager/11.0.0", "headers": []}
    names = [o["name"] for o in objs[1:]]
    assert names.count("CoreShowChannel") == 6 and "CoreShowChannelsComplete" in names
    assert all(o["type"] in ("response", "event") for o in objs[1:])
    first = objs[1]
    assert first["headers"][0] == ["Response", first["name"]]


def test_ami_decode_reads_stdin_and_reports_a_broken_capture() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["ami", "decode", "-"], input=b"Action: Ping\r\nActionID: 1\r\n\r\n")
    assert ok.exit_code == 0
    assert json.loads(ok.output)["type"] == "action"
    bad = runner.invoke(
        main, ["ami", "decode", "--max-message-bytes", "1024", "-"], input=b"X" * 5000
    )
    assert bad.exit_code != 0 and "exceeds 1024" in bad.output


def test_bench_parsers_agree_on_the_count() -> None:
    data, traces = build_capture(TRACES, 200_000)
    assert traces >= 40 and len(data) >= 200_000
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    n = ours_route(chunks)
    assert n > 1000
    assert ours_all_headers(chunks) == n == panoramisk_parse(chunks)


def test_bench_ami_prints_figures_and_a_ratio() -> None:
    result = CliRunner().invoke(
        main, ["bench", "ami", "--traces", str(TRACES), "--mb", "1", "--rounds", "1"]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"ratio ours/panoramisk \(route\): +\d+\.\d\dx", result.output)
    assert "panoramisk 1.4" in result.output and "msgs/s" in result.output


def test_panoramisk_is_only_the_benchmark_baseline() -> None:
    from pathlib import Path

    import dialer

    root = Path(dialer.__file__).parent
    imports = re.compile(r"^\s*(from|import)\s+panoramisk", re.MULTILINE)
    users = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py") if imports.search(p.read_text())
    )
    assert users == ["bench_ami.py"]

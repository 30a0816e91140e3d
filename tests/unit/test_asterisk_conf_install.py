"""Installing the rendered files: diff without secrets, backups, atomic replace, reload.

The AMI reload is replaced by a fake coroutine here (no sockets in unit tests); the real
AmiClient against a loopback AMI server is in tests/integration/test_asterisk_conf_reload.py.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.asterisk_conf import commands
from dialer.asterisk_conf import install as inst
from dialer.asterisk_conf.render import FILES, render_site
from dialer.asterisk_conf.site_secrets import load
from dialer.cli import main
from dialer.config import AmiSettings, Settings


class FakeReloader:
    """Records each reload; fails with ReloadError when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[AmiSettings] = []
        self.fail = fail

    async def __call__(self, ami: AmiSettings) -> None:
        self.calls.append(ami)
        if self.fail:
            raise inst.ReloadError("AMI at 127.0.0.1:5038: connection refused")


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (p.read_text(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _all_secrets(base: Path) -> list[str]:
    site = load(base / "asterisk-secrets.toml")
    return sorted(site.all_values())


def test_first_install_writes_every_file_and_reloads(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    reloader = FakeReloader()
    out = commands.install(Settings(), tmp_path, etc, check=False, reloader=reloader)
    assert out.code == 0
    assert sorted(p.name for p in etc.iterdir()) == sorted(FILES)
    assert stat.S_IMODE((etc / "pjsip.conf").stat().st_mode) == 0o640
    assert stat.S_IMODE((etc / "extensions.conf").stat().st_mode) == 0o644
    assert not (etc / inst.BACKUP_DIRNAME).exists()  # nothing was replaced
    assert len(reloader.calls) == 1
    # ami.secret was empty: the reload logs in with the generated one written to manager.conf
    generated = load(tmp_path / "asterisk-secrets.toml").get("ami", "dialer")
    assert reloader.calls[0].secret.get_secret_value() == generated
    assert any("DIALER_AMI_SECRET" in line for line in out.out)
    assert "Asterisk reloaded" in out.out[-1]


def test_reinstall_backs_up_what_it_replaces_and_keeps_modes(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    commands.install(Settings(), tmp_path, etc, check=False, reloader=FakeReloader())
    (etc / "extensions.conf").chmod(0o600)
    before = _snapshot(etc)
    changed = Settings.model_validate({"asterisk": {"pause_code": "*7", "seat_count": 36}})
    reloader = FakeReloader()
    out = commands.install(changed, tmp_path, etc, check=False, reloader=reloader)
    assert out.code == 0
    assert len(reloader.calls) == 1
    backups = list((etc / inst.BACKUP_DIRNAME).iterdir())
    assert len(backups) == 1
    assert stat.S_IMODE((etc / inst.BACKUP_DIRNAME).stat().st_mode) == 0o700
    saved = _snapshot(backups[0])
    assert sorted(saved) == ["extensions.conf", "pjsip.conf"]
    for name, (text, _) in saved.items():
        assert text == before[name][0]
    assert "exten => *7,1," in (etc / "extensions.conf").read_text()
    assert stat.S_IMODE((etc / "extensions.conf").stat().st_mode) == 0o600
    assert "[seat036]" in (etc / "pjsip.conf").read_text()
    assert not [p for p in etc.iterdir() if p.name.startswith(".") and p.suffix == ".new"]


def test_up_to_date_folder_is_left_alone(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    commands.install(Settings(), tmp_path, etc, check=False, reloader=FakeReloader())
    reloader = FakeReloader()
    out = commands.install(Settings(), tmp_path, etc, check=False, reloader=reloader)
    assert out.code == 0
    assert reloader.calls == []
    assert "already up to date" in out.out[-1]


def test_check_shows_a_diff_without_secrets_and_changes_nothing(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    commands.install(Settings(), tmp_path, etc, check=False, reloader=FakeReloader())
    before = _snapshot(etc)
    secrets_before = (tmp_path / "asterisk-secrets.toml").read_text()
    changed = Settings.model_validate({"asterisk": {"seat_count": 37, "next_code": "*8"}})
    out = commands.install(changed, tmp_path, etc, check=True, reloader=FakeReloader())
    text = "\n".join(out.out)
    assert out.code == 1
    assert "+exten => *8,1,AGI(" in text
    assert "-exten => *3,1,AGI(" in text
    assert "+[seat037]" in text
    assert f"+password = {inst.MASK}" in text
    for secret in _all_secrets(tmp_path):
        assert secret not in text
    assert "2 would be generated" in text
    assert _snapshot(etc) == before
    assert (tmp_path / "asterisk-secrets.toml").read_text() == secrets_before
    same = commands.install(Settings(), tmp_path, etc, check=True, reloader=FakeReloader())
    assert same.code == 0
    assert any(line.startswith("0 of 8 files would change") for line in same.out)


def test_check_on_a_fresh_site_writes_no_secrets_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    out = commands.install(Settings(), tmp_path, etc, check=True, reloader=FakeReloader())
    assert out.code == 1
    assert not (tmp_path / "asterisk-secrets.toml").exists()
    assert list(etc.iterdir()) == []
    assert "password = ********" in "\n".join(out.out)


def test_a_changed_secret_shows_only_that_it_changed(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    settings = Settings.model_validate({"ami": {"secret": "first-secret-value"}})
    commands.install(settings, tmp_path, etc, check=False, reloader=FakeReloader())
    rotated = Settings.model_validate({"ami": {"secret": "second-secret-value"}})
    out = commands.install(rotated, tmp_path, etc, check=True, reloader=FakeReloader())
    text = "\n".join(out.out)
    assert "a password or secret changes" in text
    assert "first-secret-value" not in text and "second-secret-value" not in text


def test_unreachable_ami_after_writing_is_an_error(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    out = commands.install(Settings(), tmp_path, etc, check=False, reloader=FakeReloader(True))
    assert out.code == 2
    assert sorted(p.name for p in etc.iterdir()) == sorted(FILES)
    assert "the files are installed, but Asterisk was NOT reloaded" in out.err[-1]
    assert "core reload" in out.err[-1]


def test_a_target_that_is_not_a_file_stops_everything(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "rtp.conf").mkdir()
    (etc / "pjsip.conf").write_text("; old\n")
    with pytest.raises(inst.InstallError, match="not a regular file"):
        commands.install(Settings(), tmp_path, etc, check=False, reloader=FakeReloader())
    assert (etc / "pjsip.conf").read_text() == "; old\n"
    assert sorted(p.name for p in etc.iterdir()) == ["pjsip.conf", "rtp.conf"]


def test_mask_secrets_masks_keys_and_known_values() -> None:
    text = "password = abc\nsecret=xyz\nuser = abc\nfoo = keep\n"
    masked = inst.mask_secrets(text, ["abc"])
    assert masked == f"password = {inst.MASK}\nsecret={inst.MASK}\nuser = {inst.MASK}\nfoo = keep\n"


def test_rendered_files_never_leak_into_repr(tmp_path: Path) -> None:
    rendered = render_site(Settings(), tmp_path)
    for secret in _all_secrets(tmp_path):
        assert secret not in repr(rendered)


# --------------------------------------------------------------------------- CLI


def test_cli_render_prints_no_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text("[asterisk]\nseat_count = 4\n")
    out_dir = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["asterisk", "render", "--config", str(cfg), "--out", str(out_dir)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILES)
    assert "wrote 8 files" in result.output
    assert "DIALER_AMI_SECRET" in result.output
    for secret in _all_secrets(tmp_path):
        assert secret not in result.output
    assert "[seat004]" in (out_dir / "pjsip.conf").read_text()


def test_cli_render_reports_unworkable_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text('[asterisk]\npause_code = "*2"\n')
    result = CliRunner().invoke(
        main, ["asterisk", "render", "--config", str(cfg), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "asterisk render: asterisk.unpause_code" in result.output


def test_cli_install_check_exit_status(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text("[asterisk]\nseat_count = 2\n")
    etc = tmp_path / "etc"
    etc.mkdir()
    args = ["asterisk", "install", "--config", str(cfg), "--dir", str(etc), "--check"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "8 of 8 files would change" in result.output
    assert list(etc.iterdir()) == []


def test_a_failed_backup_changes_nothing(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    commands.install(Settings(), tmp_path, etc, check=False, reloader=FakeReloader())
    (etc / inst.BACKUP_DIRNAME).write_text("in the way\n")  # backups cannot go here
    before = _snapshot(etc)
    changed = Settings.model_validate({"asterisk": {"pause_code": "*7"}})
    with pytest.raises(inst.InstallError, match=r"cannot back up.*nothing changed"):
        commands.install(changed, tmp_path, etc, check=False, reloader=FakeReloader())
    assert _snapshot(etc) == before

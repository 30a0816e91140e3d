"""Rendering: golden files, agreement with Settings, refused settings, the secrets file.

Golden files are in tests/data/asterisk_golden/<site>/; after an intended template change,
regenerate them with ``DIALER_UPDATE_GOLDEN=1 pytest tests/unit/test_asterisk_conf_render.py``
and review the diff.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import jinja2
import pytest

from dialer.asterisk_conf import contract
from dialer.asterisk_conf import render as render_mod
from dialer.asterisk_conf.render import (
    FILES,
    RenderError,
    render_files,
    render_site,
    seat_names,
    write_files,
)
from dialer.asterisk_conf.site_secrets import SecretsError
from dialer.config import Settings
from tests.unit.asterisk_conf_parse import parse_dialplan, parse_sections, typed_sections
from tests.unit.test_asterisk_conf_structure import SITES, fake_secrets

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "asterisk_golden"
UPDATE = os.environ.get("DIALER_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("site", sorted(SITES))
def test_golden_files(site: str) -> None:
    settings = SITES[site]
    files, _ = render_files(settings, fake_secrets(settings))
    folder = GOLDEN / site
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name, text in files.items():
        assert text == (folder / name).read_text(encoding="utf-8"), f"{site}/{name}"


def test_rendering_is_deterministic() -> None:
    settings = SITES["changed"]
    assert render_files(settings, fake_secrets(settings)) == render_files(
        settings, fake_secrets(settings)
    )


# --------------------------------------------------------------------------- agreement


def test_rendered_files_agree_with_settings() -> None:
    settings = SITES["changed"]
    a = settings.asterisk
    files, _ = render_files(settings, fake_secrets(settings))
    plan = parse_dialplan(files["extensions.conf"])
    # FastAGI host and port in every AGI() call.
    agis = [s.args for s in plan.steps() if s.app == "AGI"]
    assert agis and all(x.startswith("agi://10.0.0.5:4600/") for x in agis)
    # Agent codes, login extension, DIDs.
    assert set(plan.contexts[contract.CTX_AGENT_LOOP]) == {"s", "#1", "#2", "#3", "#9", "i", "t"}
    assert set(plan.contexts[contract.CTX_SEAT]) == {"7000", "i"}
    assert set(plan.contexts[contract.CTX_INBOUND]) == {"01140001000", "+911140002000", "_X."}
    # Disconnect code.
    featuremap = dict(parse_sections(files["features.conf"]))["featuremap"]
    assert featuremap["disconnect"] == ["**"]
    # Transports and NAT.
    pjsip = files["pjsip.conf"]
    transports = typed_sections(pjsip, "transport")
    assert transports["transport-udp"]["bind"] == ["10.0.0.2:5070"]
    assert transports["transport-tls"]["bind"] == ["10.0.0.2:5071"]
    assert transports["transport-tls"]["cert_file"] == [a.tls_cert_file]
    for t in transports.values():
        assert t["external_media_address"] == ["203.0.113.10"]
        assert t["local_net"] == ["10.0.0.0/8"]
    # Seats and supervisors by name; codecs; seat networks.
    endpoints = typed_sections(pjsip, "endpoint")
    assert [n for n in endpoints if n.startswith("desk")] == [f"desk{i:03d}" for i in range(1, 6)]
    assert [n for n in endpoints if n.startswith("boss")] == ["boss01"]
    assert all(e["allow"] == ["alaw,g722"] for e in endpoints.values())
    assert endpoints["desk001"]["permit"] == ["10.0.1.0/24"]
    assert endpoints["desk001"]["contact_permit"] == ["10.0.1.0/24"]
    # Trunks: TLS + registration + identify for airtel, plain for backup.
    assert endpoints["airtel"]["transport"] == ["transport-tls"]
    assert endpoints["airtel"]["outbound_auth"] == ["airtel-auth"]
    aors = typed_sections(pjsip, "aor")
    assert aors["airtel"]["contact"] == ["sip:sip.airtel.example:5061;transport=tls"]
    assert aors["backup"]["contact"] == ["sip:192.0.2.9:5060"]
    identify = typed_sections(pjsip, "identify")
    assert identify["airtel-identify"]["match"] == ["198.51.100.0/28", "198.51.100.77"]
    assert identify["backup-identify"]["match"] == ["192.0.2.9"]
    reg = typed_sections(pjsip, "registration")
    assert list(reg) == ["airtel-reg"]
    assert reg["airtel-reg"]["client_uri"] == ["sip:0114000@sip.airtel.example:5061;transport=tls"]
    auths = typed_sections(pjsip, "auth")
    assert auths["airtel-auth"]["password"] == ["trunk-from-settings"]
    assert "backup-auth" not in auths
    # AMI: port, user, the secret from settings (not from the secrets file).
    manager = dict(parse_sections(files["manager.conf"]))
    assert manager["general"]["port"] == ["6038"]
    assert manager["general"]["bindaddr"] == ["127.0.0.1"]
    assert manager["ctl"]["secret"] == ["ami-from-settings"]
    # RTP range, codec modules.
    rtp = dict(parse_sections(files["rtp.conf"]))["general"]
    assert (rtp["rtpstart"], rtp["rtpend"]) == (["12000"], ["12999"])
    loads = dict(parse_sections(files["modules.conf"]))["modules"]["load"]
    assert {"codec_alaw.so", "codec_g722.so", "codec_ulaw.so", "codec_gsm.so"} <= set(loads)
    default_loads = dict(parse_sections(_default_files()["modules.conf"]))["modules"]
    assert "codec_g722.so" not in default_loads["load"]
    assert dict(parse_sections(files["modules.conf"]))["modules"]["autoload"] == ["no"]
    assert plan.settings["globals"]["ABANDON_PROMPT"] == "custom/sorry"


def _default_files() -> dict[str, str]:
    settings = SITES["default"]
    return render_files(settings, fake_secrets(settings))[0]


def test_every_phone_has_its_own_password() -> None:
    settings = SITES["default"]
    secrets = fake_secrets(settings)
    files, _ = render_files(settings, secrets)
    auths = typed_sections(files["pjsip.conf"], "auth")
    for seat in seat_names(settings):
        assert auths[f"{seat}-auth"]["password"] == [secrets["seats"][seat]]


# --------------------------------------------------------------------------- refused settings


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"asterisk": {"pause_code": "*2"}}, "asterisk.unpause_code: '\\*2' is also"),
        ({"asterisk": {"disconnect_code": "*9"}}, "is also asterisk.logout_code"),
        ({"asterisk": {"codecs": ["opus"]}}, "asterisk.codecs: opus"),
        ({"asterisk": {"dids": ["12a"]}}, "asterisk.dids"),
        ({"asterisk": {"dids": ["123", "123"]}}, "listed twice"),
        ({"asterisk": {"rtp_start": 20000, "rtp_end": 10000}}, "rtp_start"),
        ({"asterisk": {"abandon_prompt": "x;y"}}, "abandon_prompt"),
        ({"asterisk": {"sip_bind": "5060"}}, "sip_bind"),
        ({"asterisk": {"seat_networks": ["office"]}}, "not a network"),
        ({"asterisk": {"trunks": [{"name": "seat001"}]}}, "used twice"),
        ({"asterisk": {"trunks": [{"name": "a"}, {"name": "a"}]}}, "used twice"),
        ({"asterisk": {"trunks": [{"transport": "tls"}]}}, "tls needs asterisk.tls_bind"),
        ({"asterisk": {"trunks": [{"registration": True}]}}, "needs host and username"),
        ({"agi": {"public_host": "bad host"}}, "agi.public_host"),
        ({"ami": {"username": "a b"}}, "ami.username"),
        ({"inbound": {"music_class": "a/b"}}, "inbound.music_class"),
    ],
)
def test_unworkable_settings_are_refused(change: dict[str, object], message: str) -> None:
    settings = Settings.model_validate(change)
    with pytest.raises(RenderError, match=message):
        render_files(settings, fake_secrets(settings))


def test_trunk_username_without_secret_is_refused_unless_the_secrets_file_has_it() -> None:
    settings = Settings.model_validate(
        {"asterisk": {"trunks": [{"name": "c1", "host": "192.0.2.1", "username": "u1"}]}}
    )
    secrets = fake_secrets(settings)
    files, _ = render_files(settings, secrets)
    assert typed_sections(files["pjsip.conf"], "auth")["c1-auth"]["password"] == ["test-c1-pw"]
    del secrets["trunks"]
    with pytest.raises(RenderError, match=r"trunks\[0\]\.secret"):
        render_files(settings, secrets)


def test_warnings_for_a_trunk_without_host_and_a_remote_ami() -> None:
    settings = Settings.model_validate({"ami": {"host": "10.1.1.1"}})
    _, warnings = render_files(settings, fake_secrets(settings))
    assert any("trunks[0].host is empty" in w for w in warnings)
    assert any("ami.host '10.1.1.1' is not a loopback" in w for w in warnings)
    quiet = Settings.model_validate({"asterisk": {"trunks": [{"host": "192.0.2.1"}]}})
    assert render_files(quiet, fake_secrets(quiet))[1] == []


def test_templates_fail_on_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """StrictUndefined: a template name the context lacks is an error, not an empty value."""
    original = render_mod._context

    def without_agi(*args: object) -> dict[str, object]:
        ctx = original(*args)  # type: ignore[arg-type]
        del ctx["agi"]
        return ctx

    monkeypatch.setattr(render_mod, "_context", without_agi)
    settings = Settings()
    with pytest.raises(jinja2.UndefinedError, match="agi"):
        render_files(settings, fake_secrets(settings))


# --------------------------------------------------------------------------- secrets file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_file_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    settings = Settings()
    first = render_site(settings, tmp_path)
    path = tmp_path / "asterisk-secrets.toml"
    assert first.secrets_path == path
    assert _mode(path) == 0o600
    assert len(first.secrets_added) == 35 + 3 + 1
    content = path.read_text()
    again = render_site(settings, tmp_path)
    assert again.secrets_added == ()
    assert again.files == first.files
    assert path.read_text() == content
    passwords = typed_sections(first.files["pjsip.conf"], "auth")
    values = [v["password"][0] for v in passwords.values()]
    assert len(set(values)) == len(values) == 38
    assert all(len(v) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", v) for v in values)


def test_more_seats_add_secrets_and_keep_the_old_ones(tmp_path: Path) -> None:
    small = Settings.model_validate({"asterisk": {"seat_count": 2}})
    first = render_site(small, tmp_path)
    big = Settings.model_validate({"asterisk": {"seat_count": 4}})
    second = render_site(big, tmp_path)
    assert second.secrets_added == ("seats.seat003", "seats.seat004")
    old = typed_sections(first.files["pjsip.conf"], "auth")
    new = typed_sections(second.files["pjsip.conf"], "auth")
    assert new["seat001-auth"] == old["seat001-auth"]
    assert new["seat002-auth"] == old["seat002-auth"]


def test_a_loose_secrets_file_is_tightened(tmp_path: Path) -> None:
    render_site(Settings(), tmp_path)
    path = tmp_path / "asterisk-secrets.toml"
    path.chmod(0o644)
    again = render_site(Settings(), tmp_path)
    assert _mode(path) == 0o600
    assert any("now mode 0600" in w for w in again.warnings)


def test_a_broken_secrets_file_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "asterisk-secrets.toml"
    path.write_text("[seats\n")
    with pytest.raises(SecretsError, match="not valid TOML"):
        render_site(Settings(), tmp_path)
    path.write_text('[seats]\nseat001 = "has;semicolon"\n')
    with pytest.raises(SecretsError, match="characters Asterisk cannot take"):
        render_site(Settings(), tmp_path)
    path.write_text('[other]\nx = "y"\n')
    with pytest.raises(SecretsError, match="unknown section"):
        render_site(Settings(), tmp_path)


def test_ami_secret_from_settings_is_used_and_not_stored(tmp_path: Path) -> None:
    settings = Settings.model_validate({"ami": {"secret": "from-env-value"}})
    rendered = render_site(settings, tmp_path)
    assert not rendered.ami_secret_generated
    assert dict(parse_sections(rendered.files["manager.conf"]))["dialer"]["secret"] == [
        "from-env-value"
    ]
    assert "[ami]" not in (tmp_path / "asterisk-secrets.toml").read_text()


def test_empty_ami_secret_is_generated_once(tmp_path: Path) -> None:
    first = render_site(Settings(), tmp_path)
    assert first.ami_secret_generated
    secret = dict(parse_sections(first.files["manager.conf"]))["dialer"]["secret"][0]
    assert len(secret) >= 32
    second = render_site(Settings(), tmp_path)
    assert dict(parse_sections(second.files["manager.conf"]))["dialer"]["secret"] == [secret]


def test_relative_and_absolute_secrets_paths(tmp_path: Path) -> None:
    rel = Settings.model_validate({"asterisk": {"secrets_file": "private/s.toml"}})
    assert render_site(rel, tmp_path).secrets_path == tmp_path / "private" / "s.toml"
    target = tmp_path / "abs.toml"
    absolute = Settings.model_validate({"asterisk": {"secrets_file": str(target)}})
    assert render_site(absolute, tmp_path / "elsewhere").secrets_path == target
    assert target.exists()


def test_write_files_modes(tmp_path: Path) -> None:
    rendered = render_site(Settings(), tmp_path)
    paths = write_files(rendered, tmp_path / "out")
    modes = {p.name: _mode(p) for p in paths}
    assert modes["pjsip.conf"] == modes["manager.conf"] == 0o640
    assert modes["extensions.conf"] == 0o644
    assert sorted(modes) == sorted(FILES)

"""Render Asterisk's configuration files for this site from the one settings object.

``render_files`` is pure: settings and secrets in, file texts out.  ``render_site`` adds the
secrets file (created once, reused, mode 0600) and ``write_files`` puts the texts in a folder.
Templates live in ``templates/`` and run under Jinja2's StrictUndefined: a name missing from
the context is an error, never an empty string in a config file.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from dialer.asterisk_conf import contract
from dialer.asterisk_conf import site_secrets as ss
from dialer.config import Settings, TrunkSettings

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

#: The files the renderer writes, in a fixed order.
FILES: tuple[str, ...] = (
    "pjsip.conf",
    "extensions.conf",
    "manager.conf",
    "features.conf",
    "musiconhold.conf",
    "amd.conf",
    "rtp.conf",
    "modules.conf",
)
#: Files that hold secrets (written 0640, masked in diffs).
SECRET_FILES: frozenset[str] = frozenset({"pjsip.conf", "manager.conf"})

#: Codec name (pjsip ``allow``) -> translator module to load.
CODEC_MODULES: dict[str, str] = {
    "ulaw": "codec_ulaw.so",
    "alaw": "codec_alaw.so",
    "g722": "codec_g722.so",
    "gsm": "codec_gsm.so",
}

#: Translators loaded whatever the phones use: prompts and music are stored as gsm, wav or
#: ulaw files, and alaw/ulaw legs meet in bridges.
BASE_CODEC_MODULES: frozenset[str] = frozenset(
    {"codec_ulaw.so", "codec_alaw.so", "codec_a_mu.so", "codec_gsm.so", "codec_resample.so"}
)

#: Application -> the module that provides it (None: Asterisk's core).  modules.conf must
#: load every module the dialplan, the FastAGI EXECs and the Originates need (tested).
APP_MODULES: dict[str, str | None] = {
    "Answer": None,
    "Bridge": None,
    "Goto": None,
    "GotoIf": None,
    "Hangup": None,
    "NoOp": None,
    "SayNumber": None,
    "WaitExten": None,
    "AGI": "res_agi.so",
    "AMD": "app_amd.so",
    "ChanSpy": "app_chanspy.so",
    "MixMonitor": "app_mixmonitor.so",
    "Playback": "app_playback.so",
    "Record": "app_record.so",
    "StartMusicOnHold": "res_musiconhold.so",
    "StopMusicOnHold": "res_musiconhold.so",
    "UserEvent": "app_userevent.so",
    "WaitForSilence": "app_waitforsilence.so",
}
#: Dialplan function -> its module.
FUNCTION_MODULES: dict[str, str] = {"CHANNEL": "func_channel.so", "CALLERID": "func_callerid.so"}

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_DID = re.compile(r"^\+?[0-9]+$")
_SOUND = re.compile(r"^[A-Za-z0-9_/-]+(&[A-Za-z0-9_/-]+)*$")
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+$|^[0-9A-Fa-f:]+$")


class RenderError(Exception):
    """The settings cannot make a working Asterisk configuration (one line, names the key)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one render produced: file texts, warnings, and what happened to the secrets."""

    files: dict[str, str] = field(repr=False)
    warnings: tuple[str, ...]
    secrets_path: Path
    secrets_added: tuple[str, ...]
    ami_secret_generated: bool
    secret_values: frozenset[str] = field(repr=False)
    ami_secret: str = field(repr=False)


def seat_names(settings: Settings) -> list[str]:
    """Seat endpoint names: prefix + three digits (seat001 ...)."""
    a = settings.asterisk
    return [f"{a.seat_prefix}{n:03d}" for n in range(1, a.seat_count + 1)]


def supervisor_names(settings: Settings) -> list[str]:
    """Supervisor endpoint names: prefix + two digits (sup01 ...)."""
    a = settings.asterisk
    return [f"{a.supervisor_prefix}{n:02d}" for n in range(1, a.supervisor_count + 1)]


def agi_url(settings: Settings) -> str:
    """``agi://host:port`` as the dialplan calls the controller's FastAGI server."""
    host = settings.agi.public_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"agi://{host}:{settings.agi.port}"


def resolve_secrets_path(settings: Settings, base_dir: Path) -> Path:
    """``asterisk.secrets_file``; a relative path is taken from ``base_dir``."""
    path = Path(settings.asterisk.secrets_file).expanduser()
    return path if path.is_absolute() else base_dir / path


# --------------------------------------------------------------------------- checks


def _check(settings: Settings) -> list[str]:
    """Refuse settings that cannot work; return warnings for those that work poorly."""
    a = settings.asterisk
    warnings: list[str] = []
    codes = {
        "pause_code": a.pause_code,
        "unpause_code": a.unpause_code,
        "next_code": a.next_code,
        "logout_code": a.logout_code,
        "disconnect_code": a.disconnect_code,
    }
    seen: dict[str, str] = {}
    for key, code in codes.items():
        if code in seen:
            raise RenderError(f"asterisk.{key}: {code!r} is also asterisk.{seen[code]}")
        seen[code] = key
    for key, code in codes.items():
        for other_key, other in codes.items():
            if key != other_key and other.startswith(code) and key != "disconnect_code":
                warnings.append(
                    f"asterisk.{key} {code!r} is a prefix of asterisk.{other_key} {other!r}:"
                    " the hold loop waits for more digits before acting on it"
                )
    for did in a.dids:
        if not _DID.match(did):
            raise RenderError(f"asterisk.dids: {did!r} is not a number (digits, optional +)")
    if len(set(a.dids)) != len(a.dids):
        raise RenderError("asterisk.dids: a DID is listed twice")
    unknown = [c for c in a.codecs if c not in CODEC_MODULES]
    if unknown or not a.codecs:
        raise RenderError(
            f"asterisk.codecs: {', '.join(unknown) or '(empty)'}: use some of "
            f"{', '.join(CODEC_MODULES)}"
        )
    if a.rtp_start >= a.rtp_end:
        raise RenderError("asterisk.rtp_start: must be below asterisk.rtp_end")
    if not _NAME.match(settings.inbound.music_class):
        raise RenderError(
            f"inbound.music_class: {settings.inbound.music_class!r}: letters, digits, - and _"
        )
    if not _SOUND.match(a.abandon_prompt):
        raise RenderError(f"asterisk.abandon_prompt: {a.abandon_prompt!r} is not a sound name")
    for key, bind in (("sip_bind", a.sip_bind), ("tls_bind", a.tls_bind)):
        if bind and not _HOSTPORT.match(bind):
            raise RenderError(f"asterisk.{key}: {bind!r} is not host:port")
    if not settings.agi.public_host or not _HOST.match(settings.agi.public_host):
        raise RenderError(f"agi.public_host: {settings.agi.public_host!r} is not a host")
    if not _NAME.match(settings.ami.username):
        raise RenderError(f"ami.username: {settings.ami.username!r}: letters, digits, - and _")
    for net in (*a.local_nets, *a.seat_networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise RenderError(f"asterisk: {net!r} is not a network (a.b.c.d/len)") from None
    phones = set(seat_names(settings)) | set(supervisor_names(settings))
    if set(seat_names(settings)) & set(supervisor_names(settings)):
        raise RenderError("asterisk.supervisor_prefix: supervisor names clash with seat names")
    trunk_names: set[str] = set()
    for i, trunk in enumerate(a.trunks):
        key = f"asterisk.trunks[{i}]"
        if not _NAME.match(trunk.name):
            raise RenderError(f"{key}.name: {trunk.name!r}: letters, digits, - and _")
        if trunk.name in trunk_names or trunk.name in phones:
            raise RenderError(f"{key}.name: {trunk.name!r} is used twice")
        trunk_names.add(trunk.name)
        if trunk.host and not _HOST.match(trunk.host):
            raise RenderError(f"{key}.host: {trunk.host!r} is not a host name or address")
        if trunk.transport == "tls" and not a.tls_bind:
            raise RenderError(f"{key}.transport: tls needs asterisk.tls_bind")
        if trunk.registration and not (trunk.host and trunk.username):
            raise RenderError(f"{key}.registration: needs host and username")
        if not trunk.host:
            warnings.append(
                f"{key}.host is empty: trunk {trunk.name!r} is rendered without an address;"
                " calls through it fail until the host is set"
            )
        target = re.match(r"^PJSIP/[^@]*@([A-Za-z0-9_-]+)", trunk.dial_template)
        if target and target.group(1) != trunk.name:
            warnings.append(
                f"{key}.dial_template dials endpoint {target.group(1)!r}, not {trunk.name!r}"
            )
    if not _is_loopback(settings.ami.host):
        warnings.append(
            f"ami.host {settings.ami.host!r} is not a loopback address: manager.conf still"
            " permits only 127.0.0.1, so the controller must run on the Asterisk host"
        )
    return warnings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bindaddr(host: str) -> str:
    """manager.conf ``bindaddr`` needs an address; a non-address binds loopback."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "127.0.0.1"


# --------------------------------------------------------------------------- context


def _trunk_view(trunk: TrunkSettings, secret: str) -> dict[str, Any]:
    tls = trunk.transport == "tls"
    host_port = f"{trunk.host}:{trunk.port}"
    # ";" starts a comment in Asterisk config files; "\;" is a literal semicolon.
    suffix = "\\;transport=tls" if tls else ""
    match = list(trunk.match) or ([trunk.host] if trunk.host else [])
    return {
        "name": trunk.name,
        "host": trunk.host,
        "transport": "transport-tls" if tls else "transport-udp",
        "username": trunk.username,
        "secret": secret,
        "registration": trunk.registration,
        "match": match,
        "uri": f"sip:{host_port}{suffix}",
        "client_uri": f"sip:{trunk.username}@{host_port}{suffix}",
    }


def _context(settings: Settings, secrets: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    a = settings.asterisk
    seats_s = secrets.get("seats", {})
    sups_s = secrets.get("supervisors", {})
    phones = [
        {"name": n, "context": contract.CTX_SEAT, "secret": seats_s[n]}
        for n in seat_names(settings)
    ] + [
        {"name": n, "context": contract.CTX_SUPERVISOR, "secret": sups_s[n]}
        for n in supervisor_names(settings)
    ]
    trunks = []
    for i, trunk in enumerate(a.trunks):
        secret = trunk.secret.get_secret_value() or secrets.get("trunks", {}).get(trunk.name, "")
        if trunk.username and not secret:
            raise RenderError(
                f"asterisk.trunks[{i}].secret: trunk {trunk.name!r} has a username but no"
                f" secret: set it in dialer.toml or as {trunk.name} in [trunks] of the"
                " secrets file"
            )
        trunks.append(_trunk_view(trunk, secret))
    transports = [{"name": "transport-udp", "protocol": "udp", "bind": a.sip_bind}]
    if a.tls_bind:
        transports.append({"name": "transport-tls", "protocol": "tls", "bind": a.tls_bind})
    ami_secret = settings.ami.secret.get_secret_value() or secrets.get("ami", {}).get(
        settings.ami.username, ""
    )
    if not ami_secret:
        raise RenderError("ami.secret: empty, and none in the secrets file")
    return {
        "header": (
            f"; Rendered by `dialer asterisk render` for site {settings.site.name}."
            "\n; Do not edit: change dialer.toml and render again."
        ),
        "a": a,
        "c": {
            "out": contract.CTX_OUT,
            "seat": contract.CTX_SEAT,
            "agent_loop": contract.CTX_AGENT_LOOP,
            "agent_wrapup": contract.CTX_AGENT_WRAPUP,
            "agent_notice": contract.CTX_AGENT_NOTICE,
            "inbound": contract.CTX_INBOUND,
            "supervisor": contract.CTX_SUPERVISOR,
        },
        "r": {
            "outbound_answered": contract.ROUTE_OUTBOUND_ANSWERED,
            "agent_login": contract.ROUTE_AGENT_LOGIN,
            "agent_pause": contract.ROUTE_AGENT_PAUSE,
            "agent_unpause": contract.ROUTE_AGENT_UNPAUSE,
            "agent_next": contract.ROUTE_AGENT_NEXT,
            "agent_logout": contract.ROUTE_AGENT_LOGOUT,
            "agent_wrapup": contract.ROUTE_AGENT_WRAPUP,
            "ivr_main": contract.ROUTE_IVR_MAIN,
        },
        "agi": agi_url(settings),
        "dids": [*a.dids, "_X."],
        "codecs": ",".join(a.codecs),
        "codec_modules": sorted(BASE_CODEC_MODULES | {CODEC_MODULES[c] for c in a.codecs}),
        "moh_classes": list(dict.fromkeys(["default", settings.inbound.music_class])),
        "phones": phones,
        "trunks": trunks,
        "transports": transports,
        "seat_networks": list(a.seat_networks),
        "nat": {"external_address": a.external_address, "local_nets": list(a.local_nets)},
        "ami": {
            "port": settings.ami.port,
            "bindaddr": _bindaddr(settings.ami.host),
            "username": settings.ami.username,
            "secret": ami_secret,
            "read": ",".join(contract.read_classes()),
            "write": ",".join(contract.write_classes()),
            "events": list(contract.AMI_EVENTS) if a.ami_event_filter else [],
        },
    }


@functools.cache
def _environment() -> jinja2.Environment:
    """The template environment, built once (compiling the templates is the slow part)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Asterisk config, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_files(
    settings: Settings, secrets: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, str], list[str]]:
    """Render every file (name -> text) from settings and secrets; also return warnings.

    ``secrets`` must hold a password for every seat and supervisor (see ``render_site``).
    Raises RenderError for settings that cannot work.
    """
    warnings = _check(settings)
    ctx = _context(settings, secrets)
    env = _environment()
    files = {}
    for name in FILES:
        text = env.get_template(f"{name}.j2").render(ctx)
        files[name] = re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"
    return files, warnings


def render_site(settings: Settings, base_dir: Path, *, write_secrets: bool = True) -> Rendered:
    """Render for this site, creating or completing the secrets file under ``base_dir``.

    With ``write_secrets=False`` missing secrets are generated in memory only (``--check``).
    """
    path = resolve_secrets_path(settings, base_dir)
    site = ss.load(path)
    site.ensure("seats", seat_names(settings))
    site.ensure("supervisors", supervisor_names(settings))
    ami_generated = False
    if not settings.ami.secret.get_secret_value():
        site.ensure("ami", [settings.ami.username])
        ami_generated = True
    files, warnings = render_files(settings, site.values)
    if write_secrets:
        if site.added or not site.existed:
            ss.save(site)
        else:
            ss.tighten_mode(site)
        if site.mode_fixed:
            warnings.append(f"{path}: was readable by others; now mode 0600")
    ami_secret = settings.ami.secret.get_secret_value() or site.values["ami"][settings.ami.username]
    return Rendered(
        files=files,
        warnings=tuple(warnings),
        secrets_path=path,
        secrets_added=tuple(site.added),
        ami_secret_generated=ami_generated,
        secret_values=site.all_values() | {ami_secret},
        ami_secret=ami_secret,
    )


def file_mode(name: str) -> int:
    """Mode for a rendered file: 0640 if it holds secrets, else 0644."""
    return 0o640 if name in SECRET_FILES else 0o644


def write_atomic(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(rendered: Rendered, out_dir: Path) -> list[Path]:
    """Write every rendered file into ``out_dir`` (created if needed); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered.files.items():
        path = out_dir / name
        write_atomic(path, text, file_mode(name))
        paths.append(path)
    return paths

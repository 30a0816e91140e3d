"""One typed, frozen settings object, loaded from dialer.toml plus environment overrides.

Every part of the system gets its own section.  The same object feeds the Asterisk
templates, so Asterisk and the controller never disagree about ports, contexts or secrets.

Loading order (later wins): built-in defaults, the TOML file, environment variables.
Every field can be overridden from the environment as ``DIALER_<SECTION>_<FIELD>``
(upper case), e.g. ``DIALER_DATABASE_URL``, ``DIALER_REDIS_URL``, ``DIALER_AMI_SECRET``,
so secrets never need to sit in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

DEFAULT_CONFIG_PATH = Path("dialer.toml")
ENV_PREFIX = "DIALER_"


class ConfigError(Exception):
    """A settings problem, phrased as one line naming the key and where it came from."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AmiSettings(_Section):
    """How the controller reaches Asterisk's Manager Interface."""

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "dialer"
    secret: SecretStr = SecretStr("")
    auth: Literal["md5", "plain"] = "md5"
    connect_timeout: float = Field(5.0, gt=0)
    action_timeout: float = Field(10.0, gt=0)
    ping_interval: float = Field(5.0, gt=0)
    dead_after: float = Field(15.0, gt=0)
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)
    event_queue_size: int = Field(10000, ge=10)
    max_message_bytes: int = Field(1 << 20, ge=1024)


class AgiSettings(_Section):
    """The controller's FastAGI server, and the address Asterisk uses to reach it."""

    listen_host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    public_host: str = "127.0.0.1"
    env_timeout: float = Field(5.0, gt=0)
    env_max_bytes: int = Field(64 * 1024, ge=1024)
    command_timeout: float = Field(30.0, gt=0)
    max_line_bytes: int = Field(64 * 1024, ge=256)


class DatabaseSettings(_Section):
    """The record: PostgreSQL in production, SQLite for the demo and trials."""

    url: SecretStr = SecretStr("sqlite+aiosqlite:///dialer.db")
    spool_path: str = "dialer-outcomes.spool"
    batch_size: int = Field(200, ge=1)
    flush_interval: float = Field(0.2, gt=0)


class RedisSettings(_Section):
    """Live state and the supervisor command bus; empty url means in-process (demo)."""

    url: SecretStr = SecretStr("")
    key_prefix: str = "dialer:"
    command_timeout: float = Field(5.0, gt=0)


class SiteSettings(_Section):
    """Facts about the office: country, time zone, legal calling floor."""

    name: str = "district-office"
    country: str = Field("IN", min_length=2, max_length=2)
    timezone: str = "Asia/Kolkata"
    calling_floor_start: str = Field("09:00", pattern=r"^\d\d:\d\d$")
    calling_floor_end: str = Field("21:00", pattern=r"^\d\d:\d\d$")
    abandon_no_redial_hours: float = Field(72.0, ge=0)


class TrunkSettings(_Section):
    """One way out to the carrier: a dial-string template plus its limits."""

    name: str = "carrier"
    dial_template: str = "PJSIP/{number}@carrier"
    strip_prefix: str = ""
    add_prefix: str = ""
    max_channels: int = Field(60, ge=1)
    max_cps: float = Field(10.0, gt=0)
    host: str = ""
    username: str = ""
    secret: SecretStr = SecretStr("")
    registration: bool = False
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tls"] = "udp"
    match: tuple[str, ...] = ()  # identify inbound calls by these IPs/CIDRs (default: host)


class AsteriskSettings(_Section):
    """What the rendered Asterisk configuration and the controller must agree on."""

    seat_count: int = Field(35, ge=1, le=999)
    seat_prefix: str = Field("seat", pattern=r"^[a-z][a-z0-9_-]*$")
    supervisor_count: int = Field(3, ge=0, le=99)
    supervisor_prefix: str = Field("sup", pattern=r"^[a-z][a-z0-9_-]*$")
    sip_bind: str = "0.0.0.0:5060"
    tls_bind: str = ""
    login_extension: str = Field("9000", pattern=r"^[0-9*#]+$")
    pause_code: str = Field("*1", pattern=r"^[0-9*#]+$")
    unpause_code: str = Field("*2", pattern=r"^[0-9*#]+$")
    next_code: str = Field("*3", pattern=r"^[0-9*#]+$")
    logout_code: str = Field("*9", pattern=r"^[0-9*#]+$")
    disconnect_code: str = Field("*0", pattern=r"^[0-9*#]+$")
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    dids: tuple[str, ...] = ()
    amd: bool = True
    secrets_file: str = "asterisk-secrets.toml"
    abandon_prompt: str = "tt-allbusy"
    # Preview/manual (*3): what the agent hears when the call they asked for is not answered
    # (played in dialer-agent-notice; `a&b` plays a then b).
    preview_busy_prompt: str = "the-party-you-are-calling&is-curntly-busy"
    preview_no_answer_prompt: str = "the-party-you-are-calling&is-curntly-unavail"
    preview_congestion_prompt: str = "all-circuits-busy-now"
    preview_failed_prompt: str = "cannot-complete-as-dialed"
    trunks: tuple[TrunkSettings, ...] = (TrunkSettings(),)
    tls_cert_file: str = "/etc/asterisk/keys/asterisk.crt"
    tls_key_file: str = "/etc/asterisk/keys/asterisk.key"
    external_address: str = ""  # public address when Asterisk sits behind NAT
    local_nets: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    seat_networks: tuple[str, ...] = ()  # if set, seat/supervisor phones only from these
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(20000, ge=1024, le=65535)
    ami_event_filter: bool = True  # manager.conf sends only the events the controller uses


class EngineSettings(_Section):
    """The controller's own behaviour."""

    abandon_after_seconds: float = Field(2.0, gt=0)
    tick_interval: float = Field(0.1, gt=0)
    default_ring_timeout: float = Field(25.0, gt=0)
    wrapup_seconds: float = Field(30.0, ge=0)
    min_agents_for_predictive: int = Field(5, ge=1)


class InboundSettings(_Section):
    """Inbound calls: the IVR flows, the controller's queue to the agents, blending (issue 10)."""

    flows_file: str = ""  # empty: the example shipped as dialer/agi_scripts/default_ivr.toml
    max_wait_seconds: float = Field(180.0, gt=0)  # then callback or voicemail is offered
    position_announce_seconds: float = Field(45.0, gt=0)
    service_level_seconds: float = Field(20.0, gt=0)
    hold_outbound_after_seconds: float = Field(30.0, ge=0)  # 0: never hold outbound launches
    skill_relax_seconds: float = Field(60.0, ge=0)  # then any agent may answer; 0: strict
    # Outbound-first agents (queue assign --priority outbound) take a caller who has waited this
    # long when no inbound-first agent can; 0: as soon as no inbound-first agent can.
    overflow_after_seconds: float = Field(20.0, ge=0)
    music_class: str = "default"
    recordings_dir: str = "dialer-messages"  # where Record() writes (as Asterisk sees it)
    prompt_cache_dir: str = "dialer-prompts"  # text prompts rendered by espeak-ng
    text_to_speech: bool = True
    callback_campaign: str = ""  # campaign that dials IVR callback requests; empty: first running


class LoggingSettings(_Section):
    """Where logs go and how much."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    json_format: bool = False


class Settings(_Section):
    """Everything the dialer knows about its site, in one frozen object."""

    ami: AmiSettings = AmiSettings()
    agi: AgiSettings = AgiSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    site: SiteSettings = SiteSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    engine: EngineSettings = EngineSettings()
    logging: LoggingSettings = LoggingSettings()
    inbound: InboundSettings = InboundSettings()


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Map ``DIALER_<SECTION>_<FIELD>`` variables onto sections; return values and sources."""
    data: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for section_name, section_field in Settings.model_fields.items():
        section_type = section_field.annotation
        assert isinstance(section_type, type) and issubclass(section_type, BaseModel)
        for field_name, field in section_type.model_fields.items():
            var = f"{ENV_PREFIX}{section_name}_{field_name}".upper()
            if var not in env:
                continue
            raw = env[var]
            value: Any = raw
            origin = getattr(field.annotation, "__origin__", None)
            if origin is tuple and not field_name == "trunks":
                value = tuple(part.strip() for part in raw.split(",") if part.strip())
            data.setdefault(section_name, {})[field_name] = value
            sources[f"{section_name}.{field_name}"] = f"environment variable {var}"
    return data, sources


def _merge(base: dict[str, Any], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for section, values in extra.items():
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            merged[section] = target = {}
        target.update(values)
    return merged


def _key_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Load settings from ``path`` (default ./dialer.toml if present) and the environment.

    A ``path`` given explicitly must exist.  Any problem raises :class:`ConfigError` with one
    line that names the key and where its value came from.
    """
    env = os.environ if env is None else env
    explicit = path is not None
    file_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    file_data: dict[str, Any] = {}
    file_label = str(file_path)
    if file_path.exists():
        try:
            with file_path.open("rb") as fh:
                file_data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_label}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file_label}: cannot read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError(f"{file_label}: config file does not exist")
    env_data, env_sources = _env_overrides(env)
    merged = _merge(file_data, env_data)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = _key_of(loc)
        source = env_sources.get(".".join(str(p) for p in loc[:2]), file_label)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: {key}: {msg}{more}") from None


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret replaced by ``'***'`` (for display)."""
    data = settings.model_dump(mode="json")

    def scrub(node: Any, model: Any) -> Any:
        if isinstance(node, dict) and isinstance(model, BaseModel):
            out = {}
            for key, value in node.items():
                field_value = getattr(model, key, None)
                if isinstance(field_value, SecretStr):
                    out[key] = "***" if field_value.get_secret_value() else ""
                else:
                    out[key] = scrub(value, field_value)
            return out
        if isinstance(node, list) and isinstance(model, tuple):
            return [scrub(n, m) for n, m in zip(node, model, strict=False)]
        return node

    scrubbed: dict[str, Any] = scrub(data, settings)
    return scrubbed

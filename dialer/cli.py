"""The ``dialer`` command line: parse, load settings, call into the package; no logic here.

Each command group lives in its own section below.  Commands import what they need inside
the function, so ``dialer --help`` stays fast and nothing happens at import time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dialer import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class State:
    """What the root command hands to its subcommands."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: Any = None

    @property
    def settings(self) -> Any:
        """The loaded settings; a config problem ends the command with a one-line error."""
        if self._settings is None:
            from dialer.config import ConfigError, load_settings

            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(f"config: {exc}") from None
        return self._settings


pass_state = click.make_pass_decorator(State)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="dialer")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="DIALER_CONFIG",
    help="Settings file (TOML). Default: ./dialer.toml if it exists, else built-in defaults.",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Predictive dialer and call-center controller for Asterisk.

    Start with `dialer demo` (no Asterisk, database or Redis needed). In production,
    `dialer run` drives Asterisk, PostgreSQL and Redis as dialer.toml says; every
    setting can be overridden by an environment variable DIALER_<SECTION>_<FIELD>,
    for example DIALER_DATABASE_URL, DIALER_REDIS_URL or DIALER_AMI_SECRET.
    """
    ctx.obj = State(config_path)


# --------------------------------------------------------------------------- config


@main.group()
def config() -> None:
    """Inspect the settings the other commands will use."""


@config.command("show")
@pass_state
def config_show(state: State) -> None:
    """Print the effective settings as JSON, with every secret masked."""
    from dialer.config import redacted

    click.echo(json.dumps(redacted(state.settings), indent=2))


# --------------------------------------------------------------------------- ami


@main.group()
def ami() -> None:
    """Tools for Asterisk Manager Interface (AMI) traffic."""


@ami.command("decode")
@click.argument("capture", type=click.File("rb"))
@click.option(
    "--max-message-bytes",
    type=click.IntRange(min=1024),
    default=1 << 20,
    show_default=True,
    help="Refuse a single message larger than this (a broken or hostile capture).",
)
def ami_decode(capture: Any, max_message_bytes: int) -> None:
    """Decode a raw AMI capture (FILE, or - for stdin) into one JSON object per message.

    Each line is {"type": "banner"|"response"|"event", "name": ..., "headers": [[k, v], ...]}.
    Bytes that are not valid UTF-8 are kept as \\xNN escapes, never dropped.
    """
    from dialer.protocol.ami import AmiProtocolError, decode_capture

    out = sys.stdout
    try:
        for obj in decode_capture(capture, max_message_bytes=max_message_bytes):
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    except AmiProtocolError as exc:
        raise click.ClickException(f"ami decode: {exc}") from None
    except BrokenPipeError:  # `dialer ami decode x | head` is normal use
        sys.stderr.close()


# --------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """Database schema: migrations and checks."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Migrate up to this one.")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Create or migrate the schema in the database named by database.url."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.db_upgrade, state.settings, revision))


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the schema revision of the database."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.db_current, state.settings))


def _db_call(fn: Any, *args: Any) -> Any:
    """Call a dialer.db.commands function; its CommandError becomes a one-line click error."""
    from dialer.db.commands import CommandError

    try:
        return fn(*args)
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None


def _echo_lines(lines: Any) -> None:
    for line in lines:
        click.echo(line)


# --------------------------------------------------------------------------- campaign


@main.group()
def campaign() -> None:
    """Create, inspect and steer campaigns."""


_CAMPAIGN_OPTIONS = [
    click.option(
        "--mode",
        "dial_mode",
        type=click.Choice(["predictive", "progressive", "ratio", "preview", "manual"]),
    ),
    click.option("--ratio", type=click.FloatRange(min=0.1), help="Calls per ready agent."),
    click.option("--pacing-target", type=click.FloatRange(0.1, 100), help="Abandonment % cap."),
    click.option("--caller-id", help="Caller ID presented to the called person."),
    click.option("--trunk", help="Trunk name (asterisk.trunks[].name)."),
    click.option("--ring-timeout", type=click.FloatRange(min=1), help="Seconds to ring."),
    click.option("--hours", help="Calling hours, local time of the lead: HH:MM-HH:MM."),
    click.option("--days", "calling_days", help="Calling days: mon-fri, mon,wed,sat, all."),
    click.option("--timezone", help="Campaign time zone (IANA name)."),
    click.option("--tz-policy", type=click.Choice(["lead", "campaign"])),
    click.option("--blackout", "blackout_dates", help="Dates not to call: 2026-12-25,..."),
    click.option("--max-attempts", type=click.IntRange(min=1)),
    click.option("--amd", "amd_action", type=click.Choice(["off", "hangup", "message"])),
    click.option("--amd-message", help="Sound to leave on a machine (--amd message)."),
    click.option("--notsure-live/--notsure-drop", "notsure_is_live", default=None),
    click.option("--recording/--no-recording", default=None),
    click.option("--wrapup", "wrapup_seconds", type=click.FloatRange(min=0)),
    click.option("--abandon-message", help="Sound played when no agent is free in time."),
    click.option("--status", type=click.Choice(["draft", "running", "paused", "stopped"])),
    click.option(
        "--retry",
        multiple=True,
        metavar="RESULT=DELAY/MAX",
        help="Retry rule per result, e.g. busy=15m/5, no_answer=2h/4 (repeatable).",
    ),
]


def _campaign_options(fn: Any) -> Any:
    for option in reversed(_CAMPAIGN_OPTIONS):
        fn = option(fn)
    return fn


def _campaign_values(options: dict[str, Any], settings_pairs: tuple[str, ...]) -> dict[str, Any]:
    """The options given (None = not given) plus KEY=VALUE pairs."""
    from dialer.db.commands import key_values

    values = {k: v for k, v in options.items() if v is not None and k != "retry"}
    hours = values.pop("hours", None)
    if hours is not None:
        start, sep, end = str(hours).partition("-")
        if not sep:
            raise click.BadParameter("use HH:MM-HH:MM", param_hint="--hours")
        values["calling_start"], values["calling_end"] = start.strip(), end.strip()
    values.update(_db_call(key_values, settings_pairs))
    return values


@campaign.command("create")
@click.argument("name")
@_campaign_options
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="Any other setting.")
@pass_state
def campaign_create(state: State, /, name: str, pairs: tuple[str, ...], **options: Any) -> None:
    """Create campaign NAME (status draft unless --status says otherwise)."""
    from dialer.db import commands

    retry = options.get("retry") or ()
    values = _campaign_values(options, pairs)
    if retry:
        values["retry_rules"] = _db_call(commands.retry_json, retry)
    _echo_lines(_db_call(commands.campaign_create, state.settings, name, values))


@campaign.command("list")
@pass_state
def campaign_list(state: State) -> None:
    """List campaigns with their status and lead counts."""
    from rich.console import Console
    from rich.table import Table

    from dialer.db import commands

    rows = _db_call(commands.campaign_list, state.settings)
    table = Table(*rows[0])
    for row in rows[1:]:
        table.add_row(*row)
    Console().print(table)


@campaign.command("show")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def campaign_show(state: State, campaign_ref: str, as_json: bool) -> None:
    """Show a campaign's settings, retry rules and leads by status."""
    from dialer.db import commands

    data = _db_call(commands.campaign_show, state.settings, campaign_ref)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    for key, value in data.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, default=str)
        click.echo(f"{key:>16}: {value}")


@campaign.command("set")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
@_campaign_options
@pass_state
def campaign_set(
    state: State, /, campaign_ref: str, pairs: tuple[str, ...], **options: Any
) -> None:
    """Change settings of CAMPAIGN (options or KEY=VALUE; all checked before any is saved)."""
    from dialer.db import commands

    retry = options.get("retry") or ()
    values = _campaign_values(options, pairs)
    _echo_lines(_db_call(commands.campaign_set, state.settings, campaign_ref, values, retry))
    _tell_reload(state, campaign_ref)  # a running controller picks the change up now


# --------------------------------------------------------------------------- leads


@main.group()
def leads() -> None:
    """Import and export the people a campaign calls."""


@leads.command("import")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--default-region", help="Region for national numbers (default: site.country).")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Column to lead field (phone, name, booth_code, custom:KEY, ignore ...).",
)
@click.option("--list-name", help="Name of the list these leads form (default: file name).")
@pass_state
def leads_import(
    state: State,
    campaign_ref: str,
    file: Path,
    default_region: str | None,
    mapping: tuple[str, ...],
    list_name: str | None,
) -> None:
    """Import FILE.csv into CAMPAIGN: validate, dedupe, scrub DNC, report rejects."""
    from dialer.db import commands

    _echo_lines(
        _db_call(
            commands.leads_import,
            state.settings,
            campaign_ref,
            file,
            default_region,
            mapping,
            list_name,
        )
    )


@leads.command("export")
@click.argument("campaign_ref", metavar="CAMPAIGN")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file to write (default: stdout).",
)
@click.option("--status", help="Only leads with this status (ready, done, invalid, dnc).")
@pass_state
def leads_export(state: State, campaign_ref: str, output: Path | None, status: str | None) -> None:
    """Export CAMPAIGN's leads as CSV (formula-like cells escaped)."""
    from dialer.db import commands

    message = _db_call(commands.leads_export, state.settings, campaign_ref, output, status)
    if message:
        click.echo(message, err=True)


# --------------------------------------------------------------------------- dnc


@main.group()
def dnc() -> None:
    """The do-not-call lists: global and per campaign."""


@dnc.command("add")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--campaign", "campaign_ref", help="Only for this campaign (default: global).")
@click.option("--source", default="manual", show_default=True)
@click.option("--note", default="")
@pass_state
def dnc_add(
    state: State, numbers: tuple[str, ...], campaign_ref: str | None, source: str, note: str
) -> None:
    """Put NUMBERS on the do-not-call list."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.dnc_add, state.settings, numbers, campaign_ref, source, note))


@dnc.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--campaign", "campaign_ref", help="From this campaign's list (default: global).")
@pass_state
def dnc_remove(state: State, numbers: tuple[str, ...], campaign_ref: str | None) -> None:
    """Take NUMBERS off the do-not-call list (noted in the audit log)."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.dnc_remove, state.settings, numbers, campaign_ref))


@dnc.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--campaign", "campaign_ref", help="Only for this campaign (default: global).")
@click.option(
    "--source",
    default="import",
    show_default=True,
    help="Where the list came from, e.g. ncpr (national registry) or office.",
)
@click.option("--column", help="Column holding the number (default: the first).")
@pass_state
def dnc_import(
    state: State, file: Path, campaign_ref: str | None, source: str, column: str | None
) -> None:
    """Import a list of numbers (the office's, or a national DND registry extract)."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.dnc_import, state.settings, file, campaign_ref, source, column))


@dnc.command("check")
@click.argument("number")
@click.option("--campaign", "campaign_ref", help="As this campaign sees it.")
@pass_state
def dnc_check(state: State, number: str, campaign_ref: str | None) -> None:
    """Tell whether NUMBER may not be called, and why (exit status 1 when listed)."""
    from dialer.db import commands

    listed, lines = _db_call(commands.dnc_check, state.settings, number, campaign_ref)
    _echo_lines(lines)
    if listed:
        raise SystemExit(1)


# --------------------------------------------------------------------------- agents


@main.group()
def agents() -> None:
    """Agents (people, not seats): accounts, PINs, live state."""


def _pin_option(fn: Any) -> Any:
    return click.option(
        "--pin",
        prompt="PIN (4-8 digits)",
        hide_input=True,
        confirmation_prompt=True,
        help="Prompted (hidden) when not given; avoid passing it on the command line.",
    )(fn)


@agents.command("add")
@click.argument("number")
@click.option("--name", required=True, help="The person's name.")
@_pin_option
@click.option("--language", "languages", multiple=True, help="e.g. hi, en (repeatable).")
@click.option("--skill", "skills", multiple=True, help="Skill tag (repeatable).")
@click.option("--campaign", "campaigns", multiple=True, help="Assigned campaign (repeatable).")
@pass_state
def agents_add(
    state: State,
    number: str,
    name: str,
    pin: str,
    languages: tuple[str, ...],
    skills: tuple[str, ...],
    campaigns: tuple[str, ...],
) -> None:
    """Add agent NUMBER (the digits typed at login) with a PIN."""
    from dialer.db import commands

    _echo_lines(
        _db_call(
            commands.agents_add, state.settings, number, name, pin, languages, skills, campaigns
        )
    )


@agents.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def agents_import(state: State, file: Path) -> None:
    """Add agents from CSV: number,name[,pin,languages,skills,campaigns] (lists split by ;)."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.agents_import, state.settings, file))


@agents.command("set-pin")
@click.argument("number")
@_pin_option
@pass_state
def agents_set_pin(state: State, number: str, pin: str) -> None:
    """Give agent NUMBER a new PIN (also clears a lockout)."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.agents_set_pin, state.settings, number, pin))


@agents.command("disable")
@click.argument("number")
@click.option("--enable", is_flag=True, help="Re-enable instead.")
@pass_state
def agents_disable(state: State, number: str, enable: bool) -> None:
    """Stop agent NUMBER from logging in (or allow it again with --enable)."""
    from dialer.db import commands

    _echo_lines(_db_call(commands.agents_disable, state.settings, number, enable))


# --------------------------------------------------------------------------- asterisk


@main.group()
def asterisk() -> None:
    """Asterisk configuration for this site, rendered from the same settings."""


def _asterisk_settings(state: State, config_path: Path | None) -> tuple[Any, Path]:
    """Settings (from --config here, else the root's) and the folder the secrets file is in."""
    if config_path is None:
        settings = state.settings
        config_path = state.config_path
    else:
        from dialer.config import ConfigError, load_settings

        try:
            settings = load_settings(config_path)
        except ConfigError as exc:
            raise click.ClickException(f"config: {exc}") from None
    base = (config_path or Path("dialer.toml")).resolve().parent
    return settings, base


def _asterisk_finish(outcome: Any) -> None:
    for line in outcome.err:
        click.echo(line, err=True)
    for line in outcome.out:
        click.echo(line)
    if outcome.code:
        sys.exit(outcome.code)


_asterisk_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file (default: the root --config, else ./dialer.toml). The secrets file "
    "(asterisk.secrets_file) is relative to its folder.",
)


@asterisk.command("render")
@_asterisk_config_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the Asterisk files into (created if missing).",
)
@pass_state
def asterisk_render(state: State, config_path: Path | None, out_dir: Path) -> None:
    """Write pjsip.conf, extensions.conf, manager.conf ... for this site into OUT.

    Phone passwords come from the secrets file, which is created once (mode 0600) and reused.
    No secret is printed.
    """
    from dialer.asterisk_conf import commands
    from dialer.asterisk_conf.render import RenderError
    from dialer.asterisk_conf.site_secrets import SecretsError

    settings, base = _asterisk_settings(state, config_path)
    try:
        outcome = commands.render(settings, base, out_dir)
    except (RenderError, SecretsError) as exc:
        raise click.ClickException(f"asterisk render: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"asterisk render: {out_dir}: {exc.strerror}") from None
    _asterisk_finish(outcome)


@asterisk.command("install")
@_asterisk_config_option
@click.option(
    "--dir",
    "target_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc/asterisk"),
    show_default=True,
    help="Asterisk's configuration folder.",
)
@click.option("--check", is_flag=True, help="Show a unified diff (secrets masked); change nothing.")
@pass_state
def asterisk_install(state: State, config_path: Path | None, target_dir: Path, check: bool) -> None:
    """Render for this site, install into DIR atomically (with a backup), reload over AMI.

    Exit status: 0 done or nothing to change; 1 error, or with --check when files would
    change; 2 files installed but Asterisk could not be reloaded over AMI.
    """
    from dialer.asterisk_conf import commands
    from dialer.asterisk_conf.install import InstallError
    from dialer.asterisk_conf.render import RenderError
    from dialer.asterisk_conf.site_secrets import SecretsError

    settings, base = _asterisk_settings(state, config_path)
    try:
        outcome = commands.install(settings, base, target_dir, check=check)
    except (RenderError, SecretsError, InstallError) as exc:
        raise click.ClickException(f"asterisk install: {exc}") from None
    _asterisk_finish(outcome)


# --------------------------------------------------------------------------- sim-pbx


@main.command("sim-pbx")
@click.option("--listen", default="127.0.0.1:5038", show_default=True, help="AMI HOST:PORT.")
@click.option(
    "--agi",
    "agi_addr",
    default="127.0.0.1:4573",
    show_default=True,
    help="The controller's FastAGI HOST:PORT (what AGI() calls connect to).",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Population profile (TOML) overlaid on the defaults (see docs/simulator.md).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.01, max=10000),
    default=1.0,
    show_default=True,
    help="Scale every simulated duration (60 = an hour per minute).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (repeatable runs)."
)
@click.option(
    "--agent",
    "agent_specs",
    multiple=True,
    metavar="NUMBER:PIN:SEAT",
    help="A simulated agent (repeatable), e.g. 1001:4321:seat001.",
)
@click.option(
    "--agents-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV with columns agent_number,pin,seat.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Stop after this many real seconds (0 = until Ctrl-C).",
)
@pass_state
def sim_pbx(
    state: State,
    listen: str,
    agi_addr: str,
    profile_path: Path | None,
    speed: float,
    seed: int,
    agent_specs: tuple[str, ...],
    agents_file: Path | None,
    duration: float,
) -> None:
    """Run the Asterisk 22 simulator: AMI server on --listen, FastAGI client to --agi.

    The AMI user and secret come from the settings (ami.username, ami.secret /
    DIALER_AMI_SECRET), so the controller and the simulator agree.
    """
    import asyncio

    from dialer.simpbx.profile import ProfileError, load_profile
    from dialer.simpbx.server import (
        ServerOptionError,
        ServerOptions,
        parse_agent,
        parse_hostport,
        read_agents,
        run_server,
    )

    settings = state.settings
    secret = settings.ami.secret.get_secret_value()
    if not secret:
        raise click.ClickException(
            "sim-pbx: set the AMI secret first (ami.secret in dialer.toml or DIALER_AMI_SECRET)"
        )
    try:
        agents = [parse_agent(a) for a in agent_specs]
        if agents_file is not None:
            agents += read_agents(agents_file)
        opts = ServerOptions(
            listen=parse_hostport(listen),
            agi=parse_hostport(agi_addr),
            username=settings.ami.username,
            secret=secret,
            profile=load_profile(profile_path),
            speed=speed,
            seed=seed,
            agents=agents,
            duration=duration,
        )
    except (ServerOptionError, ProfileError) as exc:
        raise click.ClickException(f"sim-pbx: {exc}") from None
    try:
        stats = asyncio.run(run_server(opts, click.echo))
    except OSError as exc:
        raise click.ClickException(f"sim-pbx: {exc}") from None
    click.echo(json.dumps({k: v for k, v in stats.items() if k != "events_by_name"}, indent=2))


# --------------------------------------------------------------------------- ivr


@main.group()
def ivr() -> None:
    """Inbound IVR flows: check a flow file before Asterisk sends callers to it."""


@ivr.command("check")
@click.argument("flows_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def ivr_check(state: State, flows_file: Path | None) -> None:
    """Validate FLOWS_FILE (default: inbound.flows_file, else the shipped example).

    Prints every problem (flow, node, key) and exits 1, or a summary and, per DID, the path
    of a caller who presses nothing: the validator proves that path always ends.
    """
    import datetime as dt

    from dialer.agi_scripts.ivr import load_flows
    from dialer.domain.ivr import FlowError, walk_silently

    settings = state.settings
    path = str(flows_file) if flows_file else settings.inbound.flows_file
    try:
        flows = load_flows(path or None, settings.site.timezone)
    except FlowError as exc:
        raise click.ClickException(str(exc)) from None
    nodes = sum(len(f.nodes) for f in flows.flows.values())
    click.echo(
        f"{flows.source}: OK - {len(flows.flows)} flow(s), {nodes} node(s), "
        f"languages {', '.join(flows.languages)}, DIDs {', '.join(flows.dids)}"
    )
    now = dt.datetime.now(dt.UTC)
    for did in flows.dids:
        status = flows.route(did).hours.status(now)
        path_taken = " -> ".join(walk_silently(flows, did, now))
        click.echo(f"  {did} ({status} now), silent caller: {path_taken}")


@ivr.command("report")
@click.option("--day", help="A day (YYYY-MM-DD, site time zone); default: today.")
@click.option("--days", type=click.IntRange(1, 366), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@pass_state
def ivr_report(state: State, day: str | None, days: int, as_json: bool) -> None:
    """Inbound calls from the ledger: results, queue figures and service level, per DID."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from dialer.reports.inbound import report

    settings = state.settings
    zone = ZoneInfo(settings.site.timezone)
    try:
        first = dt.date.fromisoformat(day) if day else dt.datetime.now(zone).date()
    except ValueError:
        bad = f"{day!r} is not a date (YYYY-MM-DD)"
        raise click.BadParameter(bad, param_hint="--day") from None
    start = dt.datetime.combine(first, dt.time(), zone)
    for line in report(settings, start, start + dt.timedelta(days=days), as_json):
        click.echo(line)


# --------------------------------------------------------------------------- run


@main.command("run")
@click.option(
    "--migrate/--no-migrate",
    default=False,
    show_default=True,
    help="Apply database migrations before starting (else run `dialer db upgrade` first).",
)
@click.option(
    "--stop-grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGINT/SIGTERM: seconds to let calls in flight end before stopping.",
)
@pass_state
def run_cmd(state: State, migrate: bool, stop_grace: float) -> None:
    """The controller: drive Asterisk (AMI + FastAGI), PostgreSQL and Redis from dialer.toml.

    Logs what it connects to; SIGINT/SIGTERM stop dialling, let calls end, flush every record.
    """
    import asyncio
    import logging

    from dialer.ami.errors import AmiAuthError
    from dialer.app import Controller

    settings = state.settings
    logging.basicConfig(
        level=settings.logging.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    controller = Controller(settings, migrate=migrate, stop_grace=stop_grace)
    try:
        asyncio.run(controller.run(signals=True))
    except (AmiAuthError, OSError, BaseExceptionGroup) as exc:
        raise click.ClickException(_startup_error(exc)) from None


def _startup_error(exc: BaseException) -> str:
    """One line for what stopped the controller (task groups wrap the real error)."""
    from dialer.ami.errors import AmiAuthError

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, AmiAuthError):
        return f"AMI login refused: {exc}"
    return f"controller stopped: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- supervisor


def _live(coro: Any) -> Any:
    """Run a dialer.live coroutine; its one-line LiveError becomes a click error."""
    import asyncio

    from dialer.live.connection import LiveError

    try:
        return asyncio.run(coro)
    except LiveError as exc:
        raise click.ClickException(str(exc)) from None


def _outcome(outcome: Any, as_json: bool) -> None:
    """Print a supervisor outcome (lines, or JSON); a refused command exits 1."""
    if as_json:
        click.echo(json.dumps(dict(outcome.data), indent=2, ensure_ascii=False, default=str))
    else:
        for line in outcome.lines:
            click.echo(line)
    if not outcome.ok:
        sys.exit(1)


def _command(state: State, name: str, args: dict[str, Any], as_json: bool) -> None:
    """Send one command through the bus and print the controller's reply."""
    from dialer.live import supervisor

    _outcome(_live(supervisor.send(state.settings, name, args)), as_json)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")


def _tell_reload(state: State, campaign_ref: str) -> None:
    """After a campaign change: tell a running controller (when Redis is configured)."""
    from dialer.live import supervisor

    line = _live(supervisor.tell_reload(state.settings, campaign_ref))
    if line:
        click.echo(line)


_CAMPAIGN_ACTION_HELP = {
    "start": "Start dialling CAMPAIGN (status running).",
    "pause": "Pause CAMPAIGN: no new calls; calls in progress finish.",
    "stop": "Stop CAMPAIGN: no new calls until it is started again.",
}


def _campaign_action(action: str) -> Any:
    @campaign.command(
        action,
        help=_CAMPAIGN_ACTION_HELP[action]
        + " Saved in the database; a running controller is told at once.",
    )
    @click.argument("campaign_ref", metavar="CAMPAIGN")
    @_json_option
    @pass_state
    def command(state: State, campaign_ref: str, as_json: bool) -> None:
        from dialer.live import supervisor

        outcome = _live(supervisor.campaign_action(state.settings, campaign_ref, action))
        _outcome(outcome, as_json)

    return command


campaign_start = _campaign_action("start")
campaign_pause = _campaign_action("pause")
campaign_stop = _campaign_action("stop")


@agents.command("list")
@_json_option
@pass_state
def agents_list(state: State, as_json: bool) -> None:
    """Agents logged in now: state, time in it, reason, campaign, call (live, from Redis)."""
    from rich.console import Console

    from dialer.live import supervisor
    from dialer.live.wallboard import agents_table

    snap = _live(supervisor.snapshot_named(state.settings))
    if as_json:
        rows = [{"agent": k, **dict(v)} for k, v in snap.agents.items()]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    Console().print(agents_table(snap, snap.engine_now()))


def _reason_option(fn: Any) -> Any:
    return click.option(
        "--reason",
        default="break",
        show_default=True,
        help="Reason code: break, lunch, meeting, training, technical, personal, other ...",
    )(fn)


@agents.command("pause")
@click.argument("agent")
@_reason_option
@_json_option
@pass_state
def agents_pause(state: State, agent: str, reason: str, as_json: bool) -> None:
    """Pause AGENT (no new calls) with a reason code."""
    from dialer.live import supervisor

    _live(_async_check(supervisor.check_reason, reason))
    _command(state, "agent.pause", {"agent": agent, "reason": reason}, as_json)


@agents.command("unpause")
@click.argument("agent")
@_json_option
@pass_state
def agents_unpause(state: State, agent: str, as_json: bool) -> None:
    """Make AGENT ready again."""
    _command(state, "agent.unpause", {"agent": agent}, as_json)


@agents.command("logout")
@click.argument("agent")
@_reason_option
@_json_option
@pass_state
def agents_logout(state: State, agent: str, reason: str, as_json: bool) -> None:
    """Log AGENT out (their line is hung up), with a reason code."""
    from dialer.live import supervisor

    _live(_async_check(supervisor.check_reason, reason))
    _command(state, "agent.logout", {"agent": agent, "reason": reason}, as_json)


async def _async_check(check: Any, *args: Any) -> Any:
    return check(*args)


@main.group()
def queue() -> None:
    """Calls waiting and ringing, agents by state; pause queues, move agents."""


@queue.command("status")
@_json_option
@pass_state
def queue_status(state: State, as_json: bool) -> None:
    """Per campaign and inbound queue: calls ringing and waiting, agents by state."""
    from rich.console import Console
    from rich.table import Table

    from dialer.live import supervisor

    rows = supervisor.queue_rows(_live(supervisor.snapshot(state.settings)))
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    table = Table(title="Queues", title_justify="left")
    for name in ("Name", "Kind", "Status", "Ringing", "Waiting", "Agents by state", "Work"):
        table.add_column(name, justify="right" if name in ("Ringing", "Waiting") else "left")
    for r in rows:
        agents_text = ", ".join(f"{k.lower()} {v}" for k, v in r["agents"].items()) or "-"
        work_text = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["work"].items()) or "-"
        table.add_row(
            r["name"],
            r["kind"],
            r["status"],
            str(r["ringing"]),
            str(r["waiting"]),
            agents_text,
            work_text,
        )
    Console().print(table)


@queue.command("pause")
@click.argument("queue_name", metavar="QUEUE")
@_json_option
@pass_state
def queue_pause(state: State, queue_name: str, as_json: bool) -> None:
    """Pause QUEUE: new callers hear the closed message."""
    _command(state, "queue.pause", {"queue": queue_name}, as_json)


@queue.command("resume")
@click.argument("queue_name", metavar="QUEUE")
@_json_option
@pass_state
def queue_resume(state: State, queue_name: str, as_json: bool) -> None:
    """Open QUEUE again."""
    _command(state, "queue.resume", {"queue": queue_name}, as_json)


@queue.command("assign")
@click.argument("agent")
@click.argument("campaign_arg", metavar="[CAMPAIGN]", required=False)
@click.option("--campaign", "campaign_opt", metavar="NAME", help="Campaign (name or id) to work.")
@click.option("--blended", is_flag=True, help="Inbound callers and outbound calls (the default).")
@click.option("--inbound-only", is_flag=True, help="Inbound callers only; no pacer counts them.")
@click.option("--outbound-only", is_flag=True, help="Campaign calls only; never inbound callers.")
@click.option(
    "--priority",
    type=click.Choice(["inbound", "outbound"]),
    help="Blended agents: which comes first (implies --blended).",
)
@_json_option
@pass_state
def queue_assign(
    state: State,
    agent: str,
    campaign_arg: str | None,
    campaign_opt: str | None,
    blended: bool,
    inbound_only: bool,
    outbound_only: bool,
    priority: str | None,
    as_json: bool,
) -> None:
    """Set what AGENT works on: a campaign, inbound callers, or both, and which first.

    \b
    Blended agents (the default) take inbound callers and campaign calls:
      --priority inbound   waiting inbound callers first (the default);
      --priority outbound  campaign calls first: the pacer counts the agent, and they take an
                           inbound caller only as overflow, when no inbound-first agent can and
                           the caller has waited inbound.overflow_after_seconds (default 20).
    --inbound-only agents are never counted by a pacer; --outbound-only agents never get
    inbound callers. Saved with the agent: it holds after a re-login or a controller restart.
    An agent who is not logged in gets it at their next login (the controller must be running).

    \b
    Examples:
      dialer queue assign 1001 spring                      # work campaign spring
      dialer queue assign 1001 --campaign spring --priority outbound
      dialer queue assign 1002 --inbound-only
      dialer queue assign 1003 --outbound-only --json
    """
    from dialer.live import supervisor

    try:
        args = supervisor.assign_args(
            agent,
            campaign_arg,
            campaign_opt,
            blended=blended,
            inbound_only=inbound_only,
            outbound_only=outbound_only,
            priority=priority,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _command(state, "queue.assign", args, as_json)


@main.command()
@click.option("--refresh", type=click.FloatRange(min=0.2), default=1.0, show_default=True)
@click.option("--once", is_flag=True, help="Print one frame and exit (no full screen).")
@pass_state
def wallboard(state: State, refresh: float, once: bool) -> None:
    """The live floor, full screen, redrawn every second (Ctrl-C to leave)."""
    from rich.console import Console

    from dialer.live import supervisor

    try:
        _live(supervisor.run_wallboard(state.settings, Console(), refresh=refresh, once=once))
    except KeyboardInterrupt:
        pass


@main.group()
def monitor() -> None:
    """Listen to, whisper to or barge in on an agent's call from a supervisor phone."""


def _monitor_action(mode: str, help_text: str) -> Any:
    @monitor.command(mode, help=help_text)
    @click.argument("agent")
    @click.option("--to", "to", required=True, help="Supervisor phone: sup01 (or 01, 1).")
    @_json_option
    @pass_state
    def command(state: State, agent: str, to: str, as_json: bool) -> None:
        from dialer.live import supervisor

        endpoint = _live(_async_check(supervisor.supervisor_endpoint, state.settings, to))
        _command(state, "monitor", {"agent": agent, "mode": mode, "to": endpoint}, as_json)

    return command


monitor_listen = _monitor_action("listen", "Listen to AGENT's call (nobody hears you).")
monitor_whisper = _monitor_action("whisper", "Speak to AGENT only; the caller does not hear.")
monitor_barge = _monitor_action("barge", "Join AGENT's call: both hear you.")


# --------------------------------------------------------------------------- reports


@main.group()
def report() -> None:
    """Reports from the record: table, CSV (--csv) and a chart (--png)."""


def _report_command(name: str, help_text: str) -> Any:
    @report.command(name, help=help_text)
    @click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day.")
    @click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (included).")
    @click.option("--campaign", "campaign_ref", help="Only this campaign (name or id).")
    @click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path))
    @_json_option
    @pass_state
    def command(state: State, /, **opts: Any) -> None:
        _report(state, name, **opts)

    return command


report_daily = _report_command("daily", "The day's summary per campaign (default: today).")
report_agents = _report_command(
    "agents", "Per agent: calls, talk and wrap-up time, occupancy, pause time by reason."
)
report_abandonment = _report_command(
    "abandonment", "Abandonment per campaign and day, and over the rolling 30 days."
)


@report.command("coverage")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day.")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (included).")
@click.option("--campaign", "campaign_ref", help="Only this campaign (name or id).")
@click.option(
    "--level",
    type=click.Choice(["district", "mandal", "shakti_kendra", "booth"]),
    default="booth",
    show_default=True,
    help="How deep to roll up the hierarchy.",
)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path))
@_json_option
@pass_state
def report_coverage(state: State, /, level: str, **opts: Any) -> None:
    """Coverage of the hierarchy: leads, reached and dispositions per unit."""
    _report(state, "coverage", level=level, **opts)


def _report(
    state: State,
    name: str,
    *,
    first: Any,
    last: Any,
    campaign_ref: str | None,
    csv_path: Path | None,
    png_path: Path | None,
    as_json: bool,
    **extra: Any,
) -> None:
    import asyncio
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from rich.console import Console

    from dialer.reports import output
    from dialer.reports.queries import REPORTS, Period

    settings = state.settings
    today = datetime.now(ZoneInfo(settings.site.timezone)).date()
    start = first.date() if first else (last.date() if last else today)
    end = last.date() if last else (start if first else today)
    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    period = Period(start, end, settings.site.timezone)

    async def run() -> Any:
        from dialer.db.database import Database

        db = Database.from_settings(settings)
        try:
            async with db.sessionmaker() as session:
                return await REPORTS[name](session, period, campaign_ref, **extra)
        finally:
            await db.close()

    try:
        result = asyncio.run(run())
    except LookupError as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    except Exception as exc:
        from dialer.live.connection import scrub

        url = settings.database.url.get_secret_value()
        first_line = (str(exc).splitlines() or [""])[0]
        message = f"database: {type(exc).__name__}: {scrub(first_line, url)}"
        raise click.ClickException(message) from None
    if as_json:
        click.echo(output.to_json(result))
    else:
        Console().print(output.table(result))
    if csv_path is not None:
        output.write_csv(result, csv_path)
        click.echo(f"wrote {csv_path}", err=as_json)
    if png_path is not None:
        output.write_png(result, png_path)
        click.echo(f"wrote {png_path}", err=as_json)


# --------------------------------------------------------------------------- bench


@main.group()
def bench() -> None:
    """Benchmarks that print figures and ratios against a baseline in the same run."""


@bench.command("pacing")
@click.option(
    "--scenario",
    "scenario_names",
    multiple=True,
    default=("core", "stress", "grid"),
    show_default=True,
    help="core, stress, grid, or one scenario by name (repeatable).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Days of the core scenario.",
)
@click.option("--stress-days", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--grid-days", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--grid-hours",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Length of a grid day (core and stress days are 8 h).",
)
@click.option("--quick", is_flag=True, help="Core 3 days, stress 1 day, no grid: a smoke run.")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Choice(["predictive", "progressive", "ratio2", "vicidial"]),
    help="Policies to compare (repeatable; default all four).",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--tick",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between pacer ticks.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes (default: one per CPU).",
)
@click.option(
    "--latency/--no-latency",
    default=True,
    show_default=True,
    help="Also time decide() at 1000 agents / 3000 calls ringing.",
)
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the occupancy-vs-abandonment PNG here.",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the results table as Markdown here.",
)
def bench_pacing(
    scenario_names: tuple[str, ...],
    days: int,
    stress_days: int,
    grid_days: int,
    grid_hours: float,
    quick: bool,
    policies: tuple[str, ...],
    seed: int,
    tick: float,
    workers: int | None,
    latency: bool,
    chart_path: Path | None,
    markdown_path: Path | None,
) -> None:
    """Simulate campaign days and compare pacing policies (occupancy vs abandonment)."""
    from dialer.pacing_sim.bench import run_benchmark, select_scenarios
    from dialer.pacing_sim.policies import POLICIES

    if quick:
        days, stress_days = 3, 1
        if scenario_names == ("core", "stress", "grid"):
            scenario_names = ("core", "stress")
    try:
        scenarios = select_scenarios(
            scenario_names,
            core_days=days,
            stress_days=stress_days,
            grid_days=grid_days,
            grid_hours=grid_hours,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    run_benchmark(
        scenarios,
        policies or POLICIES,
        seed=seed,
        tick=tick,
        workers=workers,
        latency=latency,
        chart_path=chart_path,
        markdown_path=markdown_path,
        echo=click.echo,
    )


@bench.command("sim")
@click.option("--calls", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option(
    "--duration",
    type=click.FloatRange(5, 600),
    default=60.0,
    show_default=True,
    help="Real seconds of load (after the agents logged in and an idle baseline).",
)
@click.option("--speed", type=click.FloatRange(0.1, 100), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--nice",
    type=click.IntRange(-20, 19),
    default=0,
    show_default=True,
    help="Scheduling priority of the simulator process (negative needs root): on a shared "
    "machine, measure the simulator rather than its neighbours.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw figures as JSON too.")
def bench_sim(
    calls: int, duration: float, speed: float, seed: int, nice: int, as_json: bool
) -> None:
    """The simulator with N concurrent calls: event-loop lag p99, events/s served, CPU used."""
    import asyncio

    from dialer.simpbx.bench import format_report, run_bench

    try:
        result = asyncio.run(run_bench(calls, duration, speed, seed, nice))
    except (OSError, TimeoutError) as exc:
        raise click.ClickException(f"bench sim: {exc!r}") from None
    for line in format_report(result):
        click.echo(line)
    if as_json:
        click.echo(json.dumps(result, indent=2))


@bench.command("ami")
@click.option(
    "--traces",
    "traces_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder of recorded *.ami traces to build the capture from "
    "(default: ../shared/asterisk/traces).",
)
@click.option(
    "--capture",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Use this raw AMI capture as it is instead of building one from the traces.",
)
@click.option("--mb", type=click.FloatRange(1, 500), default=20.0, show_default=True)
@click.option("--rounds", type=click.IntRange(1, 20), default=5, show_default=True)
def bench_ami(traces_dir: Path | None, capture: Path | None, mb: float, rounds: int) -> None:
    """AMI decode throughput (msgs/s), ours vs panoramisk 1.4 on the same bytes, as a ratio."""
    from dialer.bench_ami import build_capture, default_traces_dir, report, run_bench

    if capture is not None:
        data, count = capture.read_bytes(), 0
    else:
        folder = traces_dir or default_traces_dir()
        if folder is None:
            raise click.ClickException("no traces found; pass --traces DIR or --capture FILE")
        data, count = build_capture(folder, int(mb * 1e6))
    try:
        result = run_bench(data, traces=count, rounds=rounds)
    except RuntimeError as exc:
        raise click.ClickException(f"bench ami: {exc}") from None
    click.echo(report(result))


@bench.command("blended")
@click.option(
    "--hours",
    type=click.FloatRange(0.25, 24),
    default=4.0,
    show_default=True,
    help="Simulated hours per mode (the pacer starts each run cold; short runs overshoot).",
)
@click.option("--agents", type=click.IntRange(5, 200), default=35, show_default=True)
@click.option(
    "--inbound-per-hour",
    "loads",
    type=click.FloatRange(1, 5000),
    multiple=True,
    default=(120.0, 300.0),
    show_default=True,
    help="Inbound arrival rates to run (repeat the option).",
)
@click.option("--split-inbound-agents", type=click.IntRange(1, 100), default=8, show_default=True)
@click.option("--hold-after", type=click.FloatRange(0), default=30.0, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--real",
    is_flag=True,
    help="Run the controller against the simulator instead (first --inbound-per-hour).",
)
@click.option("--minutes", type=click.FloatRange(1, 600), default=60.0, show_default=True)
@click.option("--speed", type=click.FloatRange(1, 100), default=20.0, show_default=True)
@click.option("--person-share", type=click.FloatRange(0, 1), default=0.7, show_default=True)
@click.option("--db-url", default="", help="For --real: a scratch database (PostgreSQL advised).")
def bench_blended(
    hours: float,
    agents: int,
    loads: tuple[float, ...],
    split_inbound_agents: int,
    hold_after: float,
    seed: int,
    real: bool,
    minutes: float,
    speed: float,
    person_share: float,
    db_url: str,
) -> None:
    """Blended inbound + predictive outbound (discrete-event): abandonment and service level."""
    from dialer.blended_sim import BlendScenario, compare

    if real:
        import asyncio

        from dialer.blended_real import run_real

        lines = asyncio.run(run_real(minutes, speed, loads[0], person_share, db_url, seed))
        for line in lines:
            click.echo(line)
        return

    base = BlendScenario(agents=agents, hours=hours, hold_outbound_after=hold_after or None)
    for line in compare(base, loads, min(split_inbound_agents, agents - 1), seed):
        click.echo(line)


@bench.command("db")
@click.option(
    "--url",
    help="Database to measure on (default: a scratch database next to "
    "database.url; PostgreSQL for the real figures).",
)
@click.option(
    "--leads",
    "lead_count",
    type=click.IntRange(1000, 1_000_000),
    default=100_000,
    show_default=True,
    help="Rows in the import benchmark and the hopper's pool.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.5, 120),
    default=5.0,
    show_default=True,
    help="How long each throughput phase runs (bounded).",
)
@pass_state
def bench_db(state: State, url: str | None, lead_count: int, seconds: float) -> None:
    """Leads import time, hopper picks/s and ledger writes/s, with baselines."""
    from dialer.db.bench import run_bench

    for line in _db_call(run_bench, state.settings, url, lead_count, seconds):
        click.echo(line)


@bench.command("handoff")
@click.option(
    "--agents",
    "floors",
    type=click.IntRange(1, 1000),
    multiple=True,
    default=(35, 500),
    show_default=True,
    help="Floor sizes to measure (repeatable).",
)
@click.option(
    "--speed",
    "speeds",
    type=click.FloatRange(min=0.1, max=20.0),
    multiple=True,
    default=(4.0, 1.0),
    show_default=True,
    help="Simulator speed per floor (same order as --agents).",
)
@click.option(
    "--connects",
    type=click.IntRange(10, 100000),
    default=400,
    show_default=True,
    help="Hand-offs to measure per floor (after every agent logged in).",
)
@click.option(
    "--limit",
    type=click.FloatRange(min=5),
    default=180.0,
    show_default=True,
    help="Real seconds at most per phase (log-in, measuring) of each floor.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    help="Real seconds between the last log-in and measuring (skips the cold-start burst).",
)
def bench_handoff(
    floors: tuple[int, ...],
    speeds: tuple[float, ...],
    connects: int,
    limit: float,
    warmup: float,
) -> None:
    """Hand-off latency p50/p99 and controller CPU per 1,000 calls, on the simulator.

    The simulator runs as its own process (`dialer sim-pbx`); the real controller, with SQLite,
    runs here, so the CPU figure is the controller's alone.
    """
    import asyncio

    from dialer.bench_handoff import run_bench

    if len(speeds) == 1:
        speeds = speeds * len(floors)
    if len(speeds) != len(floors):
        raise click.ClickException("give one --speed, or one per --agents")
    asyncio.run(run_bench(floors, speeds, connects, limit, click.echo, warmup))


# --------------------------------------------------------------------------- demo


@main.command()
@click.option(
    "--minutes",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="How long to run (wall-clock minutes).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=20.0),
    default=6.0,
    show_default=True,
    help="Simulated time per real second (the controller runs on the same clock).",
)
@click.option("--agents", type=click.IntRange(1, 200), default=35, show_default=True)
@click.option("--leads", type=click.IntRange(10, 100000), default=3000, show_default=True)
def demo(minutes: float, speed: float, agents: int, leads: int) -> None:
    """Run the embedded demo: simulator + SQLite + 35 agents + live wallboard.

    Needs no Asterisk, PostgreSQL or Redis: the built-in PBX simulator speaks AMI and FastAGI
    on loopback, the real controller drives it, SQLite in a fresh file keeps the record.
    """
    import asyncio

    from rich.console import Console

    from dialer.demo import run_demo, summary_lines

    console = Console()
    try:
        summary = asyncio.run(run_demo(minutes, speed, console=console, agents=agents, leads=leads))
    except KeyboardInterrupt:
        raise click.ClickException("demo interrupted") from None
    for line in summary_lines(summary):
        click.echo(line)

"""What ``dialer asterisk render`` and ``dialer asterisk install`` do, minus the printing.

Each function returns the lines to show (never a secret) so the CLI stays a thin shell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from dialer.asterisk_conf import install as inst
from dialer.asterisk_conf.render import Rendered, render_site, write_files
from dialer.config import AmiSettings, Settings

Reloader = Callable[[AmiSettings], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class Outcome:
    """Lines for stdout and stderr, and the exit code."""

    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    code: int = 0


def _secret_notes(rendered: Rendered, wrote_secrets: bool) -> list[str]:
    notes = []
    added = rendered.secrets_added
    if added and wrote_secrets:
        notes.append(
            f"secrets: {len(added)} new in {rendered.secrets_path} (mode 0600): {_names(added)}"
        )
    elif added:
        notes.append(f"secrets: {len(added)} would be generated in {rendered.secrets_path}")
    if rendered.ami_secret_generated:
        notes.append(
            "AMI: ami.secret is not set, so manager.conf uses a generated secret, kept in"
            f" {rendered.secrets_path} under [ami]; set DIALER_AMI_SECRET to that value where"
            " `dialer run` runs (it is not printed here)"
        )
    return notes


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:5])} ... {names[-1]}"


def render(settings: Settings, base_dir: Path, out_dir: Path) -> Outcome:
    """Render every file into ``out_dir``; secrets file under ``base_dir``."""
    result = Outcome()
    rendered = render_site(settings, base_dir)
    paths = write_files(rendered, out_dir)
    result.err.extend(f"warning: {w}" for w in rendered.warnings)
    result.out.append(f"wrote {len(paths)} files to {out_dir}: {', '.join(rendered.files)}")
    result.out.extend(_secret_notes(rendered, wrote_secrets=True))
    return result


def install(
    settings: Settings,
    base_dir: Path,
    target_dir: Path,
    *,
    check: bool,
    reloader: Reloader = inst.reload_asterisk,
) -> Outcome:
    """Install into ``target_dir`` and reload over AMI; with ``check`` only show the diff.

    Exit codes: 0 done (or nothing to change), 1 with ``check`` when files would change,
    2 when the files were written but Asterisk could not be reloaded.
    """
    result = Outcome()
    rendered = render_site(settings, base_dir, write_secrets=not check)
    result.err.extend(f"warning: {w}" for w in rendered.warnings)
    changes = inst.plan(rendered, target_dir)
    changed = [c.name for c in changes if c.changed]
    if check:
        diff = inst.unified_diff(changes, target_dir, rendered.secret_values)
        if diff:
            result.out.append(diff.rstrip("\n"))
        result.out.append(
            f"{len(changed)} of {len(changes)} files would change in {target_dir}"
            + (f": {', '.join(changed)}" if changed else "")
        )
        result.out.extend(_secret_notes(rendered, wrote_secrets=False))
        result.code = 1 if changed else 0
        return result
    result.out.extend(_secret_notes(rendered, wrote_secrets=True))
    if not changed:
        result.out.append(f"{target_dir}: already up to date; Asterisk not reloaded")
        return result
    report = inst.apply(changes, target_dir)
    result.out.append(f"installed into {target_dir}: {', '.join(report.written)}")
    if report.backup_dir is not None:
        result.out.append(f"backup of the replaced files: {report.backup_dir}")
    if "modules.conf" in report.written:
        result.out.append(
            "modules.conf changed: restart Asterisk (core restart gracefully) to load modules"
        )
    ami = settings.ami
    if not ami.secret.get_secret_value():
        ami = ami.model_copy(update={"secret": SecretStr(rendered.ami_secret)})
    try:
        asyncio.run(reloader(ami))
    except inst.ReloadError as exc:
        result.err.append(
            f"error: the files are installed, but Asterisk was NOT reloaded: {exc}."
            " Reload it yourself: asterisk -rx 'core reload'"
        )
        result.code = 2
        return result
    result.out.append(f"Asterisk reloaded over AMI ({ami.host}:{ami.port})")
    return result

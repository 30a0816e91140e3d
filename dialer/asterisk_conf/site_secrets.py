"""The site's Asterisk secrets file: phone passwords (and the AMI secret if none is set).

Created once by the renderer and reused on every later render, so re-rendering never
changes a phone's password.  A missing entry (a new seat) is generated and added; an entry
deleted by hand is generated anew (that is how a password is rotated).  The file is TOML,
written atomically with mode 0600, and its values never reach logs or output.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Sections of the file: phone passwords, the AMI user's secret, trunk secrets (operator-made).
SECTIONS = ("seats", "supervisors", "ami", "trunks")
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_VALUE = re.compile(r"^[A-Za-z0-9_\-.~+/=!@%^]+$")

_HEADER = """\
# Secrets of the Asterisk configuration of this site, made by `dialer asterisk render`.
# Keep it private (mode 0600).  Entries are made once and reused: delete one to rotate it.
# [trunks] is yours: the carrier's password per trunk name, if not in dialer.toml.
"""


class SecretsError(Exception):
    """The secrets file cannot be read, parsed or written (one line, no secret in it)."""


def new_secret() -> str:
    """A strong random password: 32 URL-safe characters (192 bits), safe in Asterisk files."""
    return secrets.token_urlsafe(24)


@dataclass(slots=True)
class SiteSecrets:
    """The secrets by section and name, plus what this load added (names only)."""

    path: Path
    values: dict[str, dict[str, str]] = field(repr=False)
    added: list[str] = field(default_factory=list)
    existed: bool = False
    mode_fixed: bool = False

    def get(self, section: str, name: str) -> str | None:
        """The stored secret, or None."""
        return self.values.get(section, {}).get(name)

    def ensure(self, section: str, names: Iterable[str]) -> None:
        """Generate a secret for every name of ``section`` that has none yet."""
        table = self.values.setdefault(section, {})
        for name in names:
            if not table.get(name):
                table[name] = new_secret()
                self.added.append(f"{section}.{name}")

    def all_values(self) -> frozenset[str]:
        """Every secret value (to mask them in diffs)."""
        return frozenset(v for table in self.values.values() for v in table.values() if v)


def load(path: Path) -> SiteSecrets:
    """Read the secrets file at ``path``; a missing file gives an empty set."""
    if not path.exists():
        return SiteSecrets(path=path, values={})
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SecretsError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SecretsError(f"{path}: cannot read: {exc.strerror}") from None
    values: dict[str, dict[str, str]] = {}
    for section, table in raw.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise SecretsError(f"{path}: unknown section [{section}]")
        for name, value in table.items():
            if not isinstance(value, str):
                raise SecretsError(f"{path}: {section}.{name}: must be a string")
            if value and not _VALUE.match(value):
                raise SecretsError(f"{path}: {section}.{name}: has characters Asterisk cannot take")
        values[section] = dict(table)
    return SiteSecrets(path=path, values=values, existed=True)


def dumps(values: Mapping[str, Mapping[str, str]]) -> str:
    """The file text: header, then one table per non-empty section in a fixed order."""
    parts = [_HEADER]
    for section in SECTIONS:
        table = values.get(section) or {}
        if not table:
            continue
        parts.append(f"\n[{section}]\n")
        for name in sorted(table):
            if not _KEY.match(name):
                raise SecretsError(f"secrets: bad name {section}.{name!r}")
            parts.append(f'{name} = "{table[name]}"\n')
    return "".join(parts)


def save(site: SiteSecrets) -> None:
    """Write the file atomically with mode 0600 (tighten an existing looser mode)."""
    path = site.path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(site.values)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SecretsError(f"{path}: cannot write: {exc.strerror}") from None


def tighten_mode(site: SiteSecrets) -> None:
    """Make an existing secrets file 0600 if group or others could read it."""
    path = site.path
    if not path.exists():
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
        site.mode_fixed = True

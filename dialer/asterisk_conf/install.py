"""Install rendered files into Asterisk's folder: diff, backup, atomic replace, AMI reload.

Every file is staged as a temporary file next to its target first; only when all are staged
are the old files copied to a backup folder and the new ones renamed into place, so a failure
half-way leaves the old configuration untouched.  Diffs never show a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dialer.asterisk_conf.render import Rendered, file_mode
from dialer.config import AmiSettings

BACKUP_DIRNAME = ".dialer-backup"
MASK = "********"
_SECRET_LINE = re.compile(r"^(\s*(?:password|secret)\s*=\s*)(\S.*)$", re.IGNORECASE)


class InstallError(Exception):
    """The files could not be installed (nothing was changed unless the message says so)."""


class ReloadError(Exception):
    """The files are installed but Asterisk could not be asked to reload over AMI."""


@dataclass(frozen=True, slots=True)
class FileChange:
    """One rendered file against what is in the target folder now (None: no such file)."""

    name: str
    old: str | None
    new: str

    @property
    def changed(self) -> bool:
        """True if installing would change the file."""
        return self.old != self.new


@dataclass(frozen=True, slots=True)
class InstallReport:
    """What an install did: the files replaced or created, and where the backups went."""

    written: tuple[str, ...]
    backup_dir: Path | None


def plan(rendered: Rendered, target_dir: Path) -> list[FileChange]:
    """Compare every rendered file with the one in ``target_dir``."""
    changes = []
    for name, new in rendered.files.items():
        path = target_dir / name
        if path.exists() and not path.is_file():
            raise InstallError(f"{path}: exists and is not a regular file; nothing changed")
        try:
            old: str | None = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = None
        except OSError as exc:
            raise InstallError(f"{path}: cannot read: {exc.strerror}") from None
        changes.append(FileChange(name=name, old=old, new=new))
    return changes


def mask_secrets(text: str, secret_values: Iterable[str]) -> str:
    """``text`` with every password/secret value and every known secret replaced by a mask."""
    lines = []
    for line in text.splitlines(keepends=True):
        m = _SECRET_LINE.match(line.rstrip("\n"))
        if m:
            line = f"{m.group(1)}{MASK}\n" if line.endswith("\n") else f"{m.group(1)}{MASK}"
        lines.append(line)
    masked = "".join(lines)
    for value in sorted(secret_values, key=len, reverse=True):
        if value:
            masked = masked.replace(value, MASK)
    return masked


def unified_diff(changes: Iterable[FileChange], target_dir: Path, secrets: Iterable[str]) -> str:
    """A unified diff of every change, secrets masked (a changed secret shows as -/+ mask)."""
    secret_values = list(secrets)
    out: list[str] = []
    for change in changes:
        if not change.changed:
            continue
        old = mask_secrets(change.old or "", secret_values)
        new = mask_secrets(change.new, secret_values)
        if old == new:  # only a secret changed: say so without showing it
            out.append(f"--- {target_dir / change.name}\n+++ (rendered)\n")
            out.append("@@ a password or secret changes @@\n")
            continue
        out.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=str(target_dir / change.name) if change.old is not None else "/dev/null",
                tofile=f"{change.name} (rendered)",
            )
        )
        if out and not out[-1].endswith("\n"):
            out.append("\n")
    return "".join(out)


def _stage(path: Path, text: str, mode: int, owner: tuple[int, int] | None) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def apply(
    changes: Iterable[FileChange], target_dir: Path, *, now: float | None = None
) -> InstallReport:
    """Stage, back up and atomically replace every changed file in ``target_dir``.

    A replaced file keeps its mode and owner; a new file gets 0640 (secrets) or 0644 and, when
    run as root, the owner of ``target_dir``.  Backups go to
    ``<target_dir>/.dialer-backup/<YYYYmmdd-HHMMSS>/`` (mode 0700: they hold secrets).
    """
    todo = [c for c in changes if c.changed]
    if not todo:
        return InstallReport(written=(), backup_dir=None)
    if not target_dir.is_dir():
        raise InstallError(f"{target_dir}: no such folder")
    dir_stat = target_dir.stat()
    staged: list[tuple[FileChange, Path]] = []
    try:
        for change in todo:
            path = target_dir / change.name
            if change.old is not None:
                st = path.stat()
                mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
            else:
                mode, owner = file_mode(change.name), (dir_stat.st_uid, dir_stat.st_gid)
            staged.append((change, _stage(path, change.new, mode, owner)))
    except OSError as exc:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise InstallError(f"{target_dir}: cannot write: {exc.strerror}; nothing changed") from None
    try:
        backup_dir = _backup([c for c, _ in staged if c.old is not None], target_dir, now)
    except OSError as exc:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise InstallError(
            f"{target_dir}: cannot back up: {exc.strerror}; nothing changed"
        ) from None
    done: list[str] = []
    for change, tmp in staged:
        try:
            os.replace(tmp, target_dir / change.name)
        except OSError as exc:  # renames in one folder fail only on odd filesystems
            for _, left in staged:
                left.unlink(missing_ok=True)
            raise InstallError(
                f"{target_dir / change.name}: cannot replace: {exc.strerror}; installed only"
                f" {', '.join(done) or 'nothing'}; the old files are in {backup_dir}"
            ) from None
        done.append(change.name)
    return InstallReport(written=tuple(done), backup_dir=backup_dir)


def _backup(changes: list[FileChange], target_dir: Path, now: float | None) -> Path | None:
    if not changes:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    root = target_dir / BACKUP_DIRNAME
    root.mkdir(mode=0o700, exist_ok=True)
    backup_dir = root / stamp
    n = 1
    while backup_dir.exists():  # two installs within one second
        n += 1
        backup_dir = root / f"{stamp}.{n}"
    backup_dir.mkdir(mode=0o700)
    for change in changes:
        shutil.copy2(target_dir / change.name, backup_dir / change.name)
    return backup_dir


async def reload_asterisk(ami: AmiSettings) -> None:
    """Log in over AMI and send ``Reload`` (all modules, like ``core reload``).

    Raises ReloadError with one line saying why (unreachable, login refused, error reply).
    """
    from dialer.ami import AmiClient, AmiError

    client = AmiClient(ami)
    runner = asyncio.create_task(client.run(), name="ami-reload")
    quiet = _quiet_unconfigured_logging()
    try:
        await client.wait_connected(timeout=ami.connect_timeout)
        await client.action("Reload", {}, timeout=ami.action_timeout)
    except AmiError as exc:
        raise ReloadError(f"AMI at {ami.host}:{ami.port}: {exc}") from None
    finally:
        await client.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await runner
        quiet()


def _quiet_unconfigured_logging() -> Callable[[], None]:
    """Without logging set up, keep the client's retry warnings off the terminal.

    The one-line ReloadError says what went wrong; Python's last-resort handler would
    otherwise print every reconnect attempt.  Returns the undo.
    """
    root = logging.getLogger()
    if root.hasHandlers():
        return lambda: None
    handler = logging.NullHandler()
    target = logging.getLogger("dialer.ami")
    target.addHandler(handler)
    return lambda: target.removeHandler(handler)

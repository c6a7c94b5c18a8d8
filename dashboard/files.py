"""Keep every file the app reads or writes for a user inside its folder.

Exports, backups and restore uploads live under EXPORT_DIR, BACKUP_DIR and
UPLOAD_DIR. Names and stored paths come from requests and database rows, so
they are checked here before any open(): a download must never serve
/etc/passwd because a row or a form said so.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from django.core.exceptions import SuspiciousFileOperation


def _resolved_base(base: Path | str) -> Path:
    if isinstance(base, str) and "\x00" in base:
        raise SuspiciousFileOperation("The base folder name contains a NUL byte.")
    return Path(base).resolve()


def _inside(base: Path, candidate: Path, shown: str) -> Path:
    # resolve() follows symlinks, so a link inside the folder that points out of it is caught here.
    resolved = candidate.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise SuspiciousFileOperation(f"{shown!r} is outside the folder {base.name!r}.")
    return resolved


def safe_join_under(base: Path | str, name: str) -> Path:
    """Join a relative file name to `base` and return the resolved path.

    Refused with SuspiciousFileOperation: non-strings, empty names, NUL bytes,
    absolute paths (POSIX or Windows, drive letters, UNC), backslashes, any `..`
    component, and anything (a symlink included) that resolves outside `base`
    or to `base` itself. The file need not exist yet.
    """
    if not isinstance(name, str):
        raise SuspiciousFileOperation(f"A file name must be text, not {type(name).__name__}.")
    if not name or not name.strip():
        raise SuspiciousFileOperation("The file name is empty.")
    if "\x00" in name:
        raise SuspiciousFileOperation("The file name contains a NUL byte.")
    if "\\" in name or PureWindowsPath(name).drive or PurePosixPath(name).is_absolute():
        raise SuspiciousFileOperation(f"{name!r} is not a relative file name.")
    if ".." in PurePosixPath(name).parts:
        raise SuspiciousFileOperation(f"{name!r} climbs out of its folder.")
    root = _resolved_base(base)
    return _inside(root, root / name, name)


def ensure_under(base: Path | str, path: Path | str) -> Path:
    """Check a stored path (absolute, or relative to `base`) and return it resolved.

    For paths the app wrote itself into a database row (ExportJob.output_path,
    BackupJob.file_path, RestoreJob.upload_path): a row edited in the admin or a
    restored backup could point anywhere, so it is checked again before serving.
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text:
        raise SuspiciousFileOperation("The stored file path is empty.")
    if "\x00" in text:
        raise SuspiciousFileOperation("The stored file path contains a NUL byte.")
    root = _resolved_base(base)
    candidate = Path(text)
    if not candidate.is_absolute():
        if ".." in candidate.parts:
            raise SuspiciousFileOperation(f"{text!r} climbs out of its folder.")
        candidate = root / candidate
    return _inside(root, candidate, text)

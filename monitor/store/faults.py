"""What went wrong with the state database, told so that the person running monitor can fix it.

SQLite reports a full disk, a read-only file, a damaged file and a lock held elsewhere as
terse codes ("database or disk is full"). Each becomes a StoreError whose `kind` says which
fault it is, for callers that react to it (health checks), and whose message names the
database file and the step that recovers from the fault.
"""

from __future__ import annotations

import errno
import os
import pwd
import sqlite3
from pathlib import Path

from monitor.errors import StoreError

# Primary result codes (the low byte of an extended code such as SQLITE_READONLY_DIRECTORY).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_BY_CODE = {
    _SQLITE_FULL: "full",
    _SQLITE_READONLY: "readonly",
    _SQLITE_CORRUPT: "corrupt",
    _SQLITE_NOTADB: "corrupt",
    _SQLITE_BUSY: "busy",
    _SQLITE_LOCKED: "busy",
}

# For errors that carry no code (raised by hand, or by a driver that does not set one).
_BY_TEXT = {
    "database or disk is full": "full",
    "attempt to write a readonly database": "readonly",
    "file is not a database": "corrupt",
    "database disk image is malformed": "corrupt",
    "database is locked": "busy",
    "database table is locked": "busy",
}

_BY_ERRNO = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EACCES: "readonly",
    errno.EPERM: "readonly",
    errno.EROFS: "readonly",
}


def fault_kind(path: Path | str, error: BaseException) -> str:
    """Which fault `error` is: "full", "readonly", "corrupt", "busy" or "other"."""
    if isinstance(error, OSError):
        return _BY_ERRNO.get(error.errno or 0, "other")
    if not isinstance(error, sqlite3.Error):
        return "other"
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary == _SQLITE_CANTOPEN:
            # SQLite cannot create the file (or its -wal and -shm) when the directory is not
            # writable: the usual cause when a bind-mounted state/ belongs to another user.
            return "readonly" if not _writable(Path(path).parent) else "other"
        if primary in _BY_CODE:
            return _BY_CODE[primary]
    text = str(error)
    return next((kind for phrase, kind in _BY_TEXT.items() if phrase in text), "other")


def storage_error(
    path: Path | str, error: BaseException, doing: str, *, rolled_back: bool = False
) -> StoreError:
    """A StoreError for `error`, met while `doing` something with the database at `path`.

    `doing` completes "while ...": "opening it", "storing feed dawn". With `rolled_back` the
    message says that nothing of the failed transaction was kept.
    """
    kind = fault_kind(path, error)
    where = str(path)
    folder = str(Path(path).parent)
    outcome = "; nothing of it was stored (the transaction was rolled back)" if rolled_back else ""
    if kind == "full":
        message = (
            f"{where}: the disk is full (while {doing}){outcome}; "
            f"free space on the volume holding {folder}/ (see `df -h {folder}`)"
        )
    elif kind == "readonly":
        name = Path(path).name
        if _errno(error) == errno.EROFS:
            cause = "the file system is mounted read-only; "
        else:
            cause = f"{_text(error)}; " if isinstance(error, OSError) else ""
        message = (
            f"{where}: the database cannot be written (while {doing}){outcome}; {cause}"
            f"{_user()} needs write access to {where} and to its directory {folder}/, where SQLite "
            f"keeps {name}-wal and {name}-shm beside it: e.g. `chown -R {os.geteuid()} {folder}`"
        )
    elif kind == "corrupt":
        message = (
            f"{where}: the database file is damaged (while {doing}): {_text(error)}{outcome}. "
            f"To start afresh: stop monitor, move it aside with `mv {where} {where}.corrupt` (and "
            f"`mv {where}-wal {where}.corrupt-wal`, `mv {where}-shm {where}.corrupt-shm` if they "
            f"exist), then start monitor again; feeds are "
            f"polled afresh and alerts already sent may be sent again. "
            f"`sqlite3 {where}.corrupt .recover` prints the SQL of what can still be salvaged"
        )
    elif kind == "busy":
        message = (
            f"{where}: the database is locked by another process (while {doing}){outcome}; "
            f"monitor's lock file {where}.lock keeps two monitor processes apart, so the holder is "
            f"something else (a sqlite3 shell or a backup tool holding a transaction), or {folder}/ is "
            "on a network file system where locks do not work: close that process, or move state_path "
            "to a local disk"
        )
    else:
        message = f"{where}: {_text(error)} (while {doing}){outcome}"
    return StoreError(message, kind=kind)


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK) if folder.exists() else _writable(folder.parent)


def _errno(error: BaseException) -> int | None:
    return error.errno if isinstance(error, OSError) else None


def _text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror if error.filename is None else f"{error.strerror}: {error.filename}"
    return str(error) or type(error).__name__


def _user() -> str:
    """The user this process runs as, as `ls -l` would show it."""
    uid = os.geteuid()
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:  # a uid with no passwd entry, as containers often run
        return f"uid {uid}"

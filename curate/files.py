"""Durable file writes (fsync, rename), digests, timestamps, and the named crash points of the commit protocol.

`crash_point(step)` ends the process at once (no cleanup, like kill -9) when RUBBERSHEET_CRASH_AT names `step`; the
tests use it to stop a writer deterministically at every step of the protocol documented in curate.store.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import sys
import uuid
from pathlib import Path

CRASH_ENV = "RUBBERSHEET_CRASH_AT"


def crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os._exit(86)


def durable_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes, step: str | None = None) -> None:
    """Write `data` to a temporary name beside `path`, then rename it over `path` (readers see old or new)."""
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        durable_write(temp, data)
        if step:
            crash_point(step)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def copy_and_hash(source: str, temp: str) -> str:
    """Copy `source` to the new file `temp` (read-only, like every object); return the sha256 of what was copied."""
    digest = hashlib.sha256()
    reader = os.open(source, os.O_RDONLY)
    try:
        writer = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            while block := os.read(reader, 1 << 20):
                digest.update(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(writer, view):]
            os.fchmod(writer, 0o444)
        finally:
            os.close(writer)
    finally:
        os.close(reader)
    return digest.hexdigest()


def syncfs_function():
    """libc's syncfs (Linux): flush one filesystem and wait for it; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


def sync_filesystem(syncfs, folder: str) -> None:
    """syncfs on the filesystem holding `folder`."""
    import ctypes

    fd = os.open(folder, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs {folder}: {os.strerror(error)}")
    finally:
        os.close(fd)

"""Durable file writes (fsync, rename), digests, timestamps, and the named crash points of the commit protocol.

`crash_point(step)` ends the process at once (no cleanup, like kill -9) when RUBBERSHEET_CRASH_AT names `step`; the
tests use it to stop a writer deterministically at every step of the protocol documented in curate.store.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
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

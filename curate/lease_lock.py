"""The writer lock of a dataset on object storage: an object `.lock` created only if absent, holding who took it
(pid, host, command, a token) and until when (`expires`: now + RUBBERSHEET_LOCK_LEASE_S seconds, default 3600).

Why a lease: no one can check from another machine whether a writer is alive, so a lock past its lease is stale
(a lock left by a dead process on this host is stale at once, as locally). A stale lock is taken over through a
second conditional create, `.lock-takeover-<digest of that lock's bytes>`: of two writers that find the same stale
lock, only the one that creates the marker removes it, so they cannot both end up holding the lock. The markers are
a few bytes each; those older than a day are removed by the next writer. The holder renews its lease when it
stages and before it commits, and a holder that finds its lock taken over commits nothing. The clocks of the
machines that share a dataset are assumed to agree to well within the lease.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
import uuid
from typing import Any

from curate.exceptions import StoreLocked
from curate.files import sha256_bytes, utc_now
from curate.storage import Remote

LEASE_ENV = "RUBBERSHEET_LOCK_LEASE_S"
DEFAULT_LEASE_S = 3600.0
LOCK = ".lock"
TAKEOVER = ".lock-takeover-"
MARKER_AGE_S = 86400.0


def lease_s() -> float:
    return float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE_S)


class LeaseLock:
    def __init__(self, remote: Remote):
        self.remote = remote
        self.token: str | None = None

    def take(self) -> None:
        """Create the lock (taking over a stale one), or raise StoreLocked naming its holder."""
        token = uuid.uuid4().hex
        for attempt in range(2):
            if self.remote.create(LOCK, self._holder(token)):
                self.token = token
                return
            raw = self.remote.read(LOCK)
            if raw is None and attempt == 0:
                continue  # released between our create and our read
            other = _parse(raw)
            if attempt == 0 and self._take_over(raw, other):
                continue
            until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(other["expires"])) \
                if isinstance(other.get("expires"), (int, float)) else "?"
            raise StoreLocked(
                f"{self.remote.url}: locked by another writer (pid {other.get('pid', '?')} on "
                f"{other.get('host', '?')} since {other.get('since', '?')}, lease until {until}); wait for it to "
                f"finish, or delete {self.remote.url_of(LOCK)} if no writer is running") from None

    def _holder(self, token: str) -> bytes:
        lease = lease_s()
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now(),
                           "command": shlex.join(sys.argv), "token": token, "lease_s": lease,
                           "expires": time.time() + lease}).encode()

    def _take_over(self, raw: bytes, other: dict[str, Any]) -> bool:
        from curate.store import lock_is_stale

        expires = other.get("expires")
        stale = lock_is_stale(other) or (isinstance(expires, (int, float)) and expires < time.time())
        if not other:  # unreadable: a writer died between create and write? only once its age passes the lease
            info = self.remote.info(LOCK) or {}
            modified = info.get("LastModified")
            stale = hasattr(modified, "timestamp") and time.time() - modified.timestamp() > lease_s()
        if not stale or not self.remote.create(TAKEOVER + sha256_bytes(raw)[:32], raw):
            return False
        self.remote.delete([LOCK])
        return True

    def held(self) -> bool:
        return self.token is not None and _parse(self.remote.read(LOCK)).get("token") == self.token

    def renew(self) -> None:
        """Extend the lease, or refuse (nothing written) when another writer took the lock over."""
        if not self.held():
            raise StoreLocked(f"{self.remote.url}: this writer's lock expired and another writer took it over; "
                              f"nothing committed (raise {LEASE_ENV} for runs this long)")
        self.remote.write(LOCK, self._holder(self.token))

    def drop(self) -> None:
        if self.held():
            self.remote.delete([LOCK])
        self.token = None

    def prune_markers(self) -> None:
        now = time.time()
        self.remote.delete([e.key for e in self.remote.top() if e.key.startswith(TAKEOVER)
                            and e.modified is not None and now - e.modified > MARKER_AGE_S])


def _parse(raw: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

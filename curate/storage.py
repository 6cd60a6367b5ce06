"""Where a dataset's bytes live when it is not a local directory: any fsspec URL (`s3://bucket/prefix/name`,
`gs://...`, `memory://...`). Local paths never come here: curate.store keeps its own code path for them (fsync,
atomic rename), byte for byte as before.

Object storage has no rename and no O_EXCL: what the commit protocol needs from it is one primitive, a conditional
create (`create`: S3 PutObject with If-None-Match: "*", s3fs `pipe_file(mode="create")`), which fails when the key
exists. Everything else is plain reads, writes, listings and deletes (see curate.remote for the protocol).

Credentials and endpoint are the object store's usual ones: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or
AWS_PROFILE), and for MinIO, moto or another S3-compatible server FSSPEC_S3_ENDPOINT_URL or AWS_ENDPOINT_URL (read
at each connection, so a test or a shell can set them late). A connection, bucket or authorisation failure is ONE
line naming the cause (BadInput: the CLIs print it and exit 2), raised by `Remote.check` before anything is written.

Media decoders read local files: `fetch` copies an object into a content-addressed read-through cache
(RUBBERSHEET_CACHE, default ~/.cache/rubbersheet, or $XDG_CACHE_HOME/rubbersheet), checking its sha256 on the way
in, so a cached object is always the object its name says. Any process (a pool worker too) can fill it; writes go
to a temporary name and are renamed, so concurrent fetches of one object are harmless.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from curate.exceptions import BadInput

CACHE_ENV = "RUBBERSHEET_CACHE"
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")


def is_url(text: str | os.PathLike) -> bool:
    """A URL with a scheme of two or more letters ('C:/...' on Windows is a path)."""
    return isinstance(text, str) and _URL.match(text) is not None


def location(text: str | os.PathLike) -> str | Path:
    """A dataset location as the store takes it: a URL as written (less a trailing '/'), anything else a Path."""
    if is_url(text):
        return str(text).rstrip("/")
    return Path(text)


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rubbersheet"


def _options(protocol: str) -> dict:
    """Storage options: fsspec's configuration, plus the endpoint from the environment as it is now (fsspec reads
    its FSSPEC_* variables once, at import)."""
    import fsspec.config

    options = dict(fsspec.config.conf.get(protocol, {}))
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3") or \
            os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        options.setdefault("use_listings_cache", False)  # listings must show other writers' commits at once
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", 10)
        config.setdefault("retries", {"max_attempts": 3})
        options["config_kwargs"] = config
    return options


def filesystem(url: str):
    """The fsspec filesystem for `url` (fsspec caches instances per process, and drops them in a forked child)."""
    protocol = _URL.match(url).group(1).lower()
    try:
        import fsspec

        return fsspec.filesystem(protocol, **_options(protocol))
    except ImportError as exc:
        raise BadInput(f"{url}: datasets on {protocol}:// need the s3 extra (pip install 'rubbersheet[s3]'): "
                       f"{exc}") from None
    except ValueError as exc:
        raise BadInput(f"{url}: {exc}") from None


def describe_failure(url: str, exc: BaseException) -> str | None:
    """One line naming why the object store refused or could not be reached; None for an error that is not about
    connection, bucket or credentials."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    bucket = url.split("://", 1)[1].split("/", 1)[0]
    if name == "NoCredentialsError" or "Unable to locate credentials" in text:
        return (f"{url}: no credentials for the object store (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE)")
    if isinstance(exc, PermissionError) or name in ("ClientError", "InvalidAccessKeyId", "SignatureDoesNotMatch") \
            and re.search(r"AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden|403", text):
        return f"{url}: access denied by the object store ({text}); check the credentials (AWS_* variables)"
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return f"{url}: bucket '{bucket}' does not exist"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ClientConnectorError",
                "ServerDisconnectedError") or isinstance(exc, (ConnectionError, TimeoutError)):
        endpoint = os.environ.get("FSSPEC_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or "the default"
        return f"{url}: cannot reach the object store (endpoint {endpoint}): {text}"
    return None


@contextlib.contextmanager
def one_line(url: str) -> Iterator[None]:
    """Turn connection, bucket and credential failures into BadInput (one line, exit 2 on the CLI)."""
    try:
        yield
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 (botocore, aiohttp and OSError subclasses all mean the same here)
        message = describe_failure(url, exc)
        if message is None:
            raise
        raise BadInput(message) from None


@dataclass(frozen=True)
class Entry:
    key: str      # relative to the dataset's root
    size: int
    modified: float | None = None


class Remote:
    """A dataset's root on object storage; keys are relative to it ('versions/v0001/version.json')."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs = filesystem(self.url)
        self.root = self.fs._strip_protocol(self.url).rstrip("/")

    def __repr__(self) -> str:
        return f"Remote({self.url!r})"

    def full(self, key: str) -> str:
        return f"{self.root}/{key}"

    def url_of(self, key: str) -> str:
        return f"{self.url}/{key}"

    def check(self) -> None:
        """Reach the store and its bucket with the credentials at hand, or fail in one line (nothing written)."""
        with one_line(self.url):
            bucket = self.root.split("/", 1)[0]
            self.fs.ls(bucket, detail=False)

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            return self.fs.cat_file(self.full(key))
        except FileNotFoundError:
            return None

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        found = self.fs.cat([self.full(k) for k in keys], on_error="return")
        out = {}
        for key in keys:
            value = found.get(self.full(key))
            if isinstance(value, BaseException):
                if isinstance(value, FileNotFoundError):
                    continue
                raise value
            out[key] = value
        return out

    def write(self, key: str, data: bytes) -> None:
        """Put `data` (an S3 PUT is atomic: readers see the old object or the new one)."""
        self.fs.pipe_file(self.full(key), data)

    def create(self, key: str, data: bytes) -> bool:
        """Create `key` only if it does not exist (the one atomic decision object storage offers); False if it did."""
        try:
            self.fs.pipe_file(self.full(key), data, mode="create")
        except FileExistsError:
            return False
        except Exception as exc:  # noqa: BLE001 (an s3fs from before exclusive writes hands `mode` to botocore)
            if "mode" not in str(exc) or type(exc).__name__ not in ("ParamValidationError", "TypeError"):
                raise
            raise BadInput(f"{self.url}: this fsspec/s3fs cannot create a file only if it is absent, which the "
                           "commit protocol needs; upgrade (pip install 'rubbersheet[s3]')") from None
        return True

    def create_many(self, items: dict[str, bytes]) -> None:
        """Create every key that is absent, concurrently (content-addressed objects: one that exists already is
        the same bytes, and is left as it is)."""
        if not items:
            return
        try:
            self.fs.pipe({self.full(k): v for k, v in items.items()}, mode="create")
        except FileExistsError:  # one of them was there: create one by one, skipping those present
            for key, data in items.items():
                self.create(key, data)

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.full(key))

    def info(self, key: str) -> dict | None:
        try:
            return self.fs.info(self.full(key))
        except FileNotFoundError:
            return None

    def delete(self, keys: list[str]) -> None:
        if keys:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm([self.full(k) for k in keys])

    def occupied(self) -> bool:
        """Anything under the root (one listing page)."""
        try:
            return bool(self.fs.ls(self.root, detail=False))
        except FileNotFoundError:
            return False

    def top(self) -> list[Entry]:
        """The objects directly under the root (not those under its folders): one listing page, however large
        the dataset."""
        try:
            found = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return []
        start = len(self.root) + 1
        return [Entry(m["name"][start:], int(m.get("size") or 0), _timestamp(m)) for m in found
                if m.get("type") != "directory" and m["name"].startswith(self.root + "/")]

    def list(self, prefix: str) -> list[Entry]:
        """Every object under `prefix/` (recursive), as keys relative to the root."""
        try:
            found = self.fs.find(self.full(prefix), detail=True)
        except FileNotFoundError:
            return []
        start = len(self.root) + 1
        out = []
        for name, meta in found.items():
            if meta.get("type") == "directory":
                continue
            out.append(Entry(name[start:], int(meta.get("size") or 0), _timestamp(meta)))
        return out


def _timestamp(meta: dict) -> float | None:
    modified = meta.get("LastModified") or meta.get("mtime")
    return modified.timestamp() if hasattr(modified, "timestamp") else None


def object_key(digest: str, ext: str) -> str:
    return f"objects/{digest[:2]}/{digest}.{ext}"


def cached_object(digest: str, ext: str) -> Path:
    return cache_root() / "objects" / digest[:2] / f"{digest}.{ext}"


def fetch(remote: Remote, pairs: list[tuple[str, str]]) -> None:
    """Bring the objects (digest, ext) into the local read-through cache, checking each one's sha256; an object
    missing from the store, or whose bytes do not hash to its name, raises OSError naming it."""
    wanted = sorted({(d, e) for d, e in pairs if not cached_object(d, e).is_file()})
    for start in range(0, len(wanted), 64):  # bounded memory: objects are read whole
        batch = wanted[start:start + 64]
        found = remote.read_many([object_key(d, e) for d, e in batch])
        for digest, ext in batch:
            data = found.get(object_key(digest, ext))
            if data is None:
                raise FileNotFoundError(2, "object missing from the store", remote.url_of(object_key(digest, ext)))
            _keep(digest, ext, data, remote.url_of(object_key(digest, ext)))


def _keep(digest: str, ext: str, data: bytes, where: str) -> Path:
    if hashlib.sha256(data).hexdigest() != digest:
        raise OSError(f"{where}: object content does not match its hash (corrupted)")
    target = cached_object(digest, ext)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def local_copy(url: str) -> Path:
    """A local file with the bytes of the object at `url` (DATASET/objects/ab/<sha256>.<ext>), through the cache."""
    head, _, name = url.rpartition("/")
    digest, _, ext = name.partition(".")
    cached = cached_object(digest, ext)
    if cached.is_file():
        return cached
    dataset_url = head.rsplit("/", 2)[0]
    fetch(Remote(dataset_url), [(digest, ext)])
    return cached

"""The Ray executor: the driver plans exactly as for the local pool (same per-item seeds), ships chunks of tasks to
Ray and gathers their results in plan order; it runs the gate and the commit itself.

What travels. Everything a task needs goes with it; a worker resolves no path of the recipe against its own
working directory. The pipelines travel as their specs, each file asset (noise bed) bound to an absolute path or
to the worker's copy of bytes the driver shipped (augment.run.assets); sources are named by their object in the
output dataset (an absolute path). The workers run the driver's code: `augment` and `curate` travel as Ray
`py_modules`, and every worker checks that its package version and a hash of that source equal the driver's.

Storage. A probe on every node (a marker file the driver writes into the dataset's objects, plus a sample of the
sources and every asset) tells whether the workers see the driver's files. If every node does (shared storage:
NFS, a cluster file system), workers read sources and assets there and write objects straight into the store.
Otherwise the driver ships the source bytes (one `ray.put` per chunk) and the assets (one `ray.put` per run)
through Ray's object store and stores the bytes the workers send back, so no shared filesystem is needed; those
tasks carry the driver's paths only as file:// names for messages, nothing a worker could open.
A dataset on object storage (s3://...) is probed the same way, the marker being an object in the bucket: nodes
that reach the bucket (their own credentials and endpoint) and the beds read sources from the bucket and write
objects to it; otherwise the driver fetches the sources through its cache, ships them, and uploads the results.
`RUBBERSHEET_RAY_STORAGE=shared|copy` overrides the probe's answer. A worker that cannot read an input fails
with "worker on NODE cannot read URI".

Operations. `connect()` joins the cluster before anything is written, and every failure to join (no cluster
at the address, token authentication required or refused) is one line naming the cause. A worker that dies mid-task is
retried by Ray; per-item seeds make the retry identical.

Testing hook: a node whose raylet runs with RUBBERSHEET_RAY_TEST_UNSEEN=FILE treats the paths under the prefixes
listed in FILE (one a line) as absent, so a test on one host can have a node that does not see the dataset.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import os
import posixpath
import socket
import sys
import tempfile
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from augment.run.assets import Asset, materialise, payload, rebind, record_names
from augment.run.execute import CHUNK, ItemFailed, Pipelines, Result, chunks, init_worker, produce, store_result
from augment.run.plan import Task
from curate.exceptions import BadInput
from curate.storage import is_url

STORAGE_ENV = "RUBBERSHEET_RAY_STORAGE"
UNSEEN_ENV = "RUBBERSHEET_RAY_TEST_UNSEEN"
PROBE_TIMEOUT_S = 300
_RUN: dict[str, Any] = {}


class WorkerRefused(BadInput):
    """A worker cannot take part in the run (other code, an asset it cannot read); one line naming the node."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise BadInput("--executor ray needs Ray: pip install 'rubbersheet[ray]'") from None
    return ray


# -- what runs on a worker ---------------------------------------------------------------------------------------
def node_name() -> str:
    try:
        import ray

        return f"{socket.gethostname()} (node {ray.get_runtime_context().get_node_id()[:8]})"
    except Exception:  # outside a Ray worker
        return socket.gethostname()


def code_identity(roots: list[Path] | None = None) -> tuple[str, str]:
    """(installed rubbersheet version, sha256 of the augment and curate sources: those under `roots`, by default
    the packages this process imported)."""
    import augment
    import curate
    from curate.store import package_version

    digest = hashlib.sha256()
    for root in roots or (Path(augment.__file__).parent, Path(curate.__file__).parent):
        for file in sorted(root.rglob("*.py")):
            if "__pycache__" not in file.parts:
                digest.update(f"{root.name}/{file.relative_to(root).as_posix()}\0".encode())
                digest.update(file.read_bytes())
    return package_version(), digest.hexdigest()[:16]


def _check_identity(expected: tuple[str, str]) -> tuple[str, str]:
    mine = code_identity()
    if tuple(mine) != tuple(expected):
        raise WorkerRefused(f"worker on {node_name()} runs rubbersheet {mine[0]} (source {mine[1]}), the driver "
                            f"{expected[0]} (source {expected[1]}): install the same version on every node; the "
                            "driver ships its augment and curate packages to the workers (Ray py_modules), so "
                            "a different source means the workers import another copy first")
    return mine


def _unseen(path: str) -> bool:
    listing = os.environ.get(UNSEEN_ENV)
    if not listing:
        return False
    try:
        prefixes = [line.strip().rstrip("/") for line in Path(listing).read_text().splitlines() if line.strip()]
    except OSError:
        return False
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _readable(path: str) -> str | None:
    """None when this worker can read `path` (a file, a folder's listing, or an object on object storage); else
    why not."""
    if _unseen(path):
        return "No such file or directory (hidden from this node by the test hook)"
    if is_url(path):
        from curate.storage import describe_failure, filesystem

        try:
            filesystem(path).cat_file(path, start=0, end=1)
        except Exception as exc:  # noqa: BLE001 - credentials, endpoint, missing object: the reason, in one line
            described = describe_failure(path, exc)
            if described:
                return described.split(": ", 1)[1]
            return "No such object" if isinstance(exc, FileNotFoundError) else \
                f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        return None
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as handle:
                handle.read(1)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _cannot_read(path: str, reason: str) -> str:
    return f"worker on {node_name()} cannot read {_uri(path)} ({reason})"


def _uri(path: str) -> str:
    return path if is_url(path) else Path(path).as_uri()


def _read_text(path: str) -> str:
    if is_url(path):
        from curate.storage import filesystem

        return filesystem(path).cat_file(path).decode()
    return Path(path).read_text()


def probe_node(marker: str, paths: list[str]) -> dict[str, Any]:
    """Runs once on every node: who it is, which code it runs, whether it sees the driver's files."""
    missing = next((p for p in [marker, *paths] if _readable(p) is not None), None)
    if missing is None and _read_text(marker) != marker.rsplit("/", 1)[-1]:
        missing = marker
    import augment

    return {"node": node_name(), "identity": code_identity(), "missing": missing,
            "origin": str(Path(augment.__file__).parent.parent)}


def _join_run(bundle: dict[str, Any]) -> None:
    """Once per worker process and run: check the code, bind the assets, build the pipelines."""
    if _RUN.get("token") == bundle["token"]:
        return
    _check_identity(bundle["identity"])
    assets: dict[str, Asset] = bundle["assets"]
    if bundle["shared"]:
        for asset in assets.values():
            reason = _readable(asset.absolute)
            if reason is not None:
                raise WorkerRefused(_cannot_read(asset.absolute, reason))

        def where(asset: Asset) -> str:
            return asset.absolute
    else:
        import ray

        shipped = ray.get(bundle["payload"][0])
        local = {written: materialise(asset, shipped[written]) for written, asset in assets.items()}

        def where(asset: Asset) -> str:
            return local[asset.written]
    from augment.core import from_dict

    try:
        pipelines = {tag: from_dict(rebind(spec, assets, where)) for tag, spec in bundle["specs"].items()}
    except ValueError as exc:
        raise WorkerRefused(f"worker on {node_name()}: {str(exc).splitlines()[0]}") from None
    init_worker(pipelines, record_names(assets, where))
    _RUN["token"] = bundle["token"]


def _produce_from_bytes(task: Task, data: bytes) -> tuple[str, bytes, str, list[dict]]:
    """Produce from shipped source bytes: decoded from a private temporary file (the decoders take paths)."""
    folder = os.path.join(tempfile.gettempdir(), f"rubbersheet-sources-{os.getuid() if hasattr(os, 'getuid') else 0}")
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f"{uuid.uuid4().hex}.{task.path.rsplit('.', 1)[-1]}")   # task.path: the URI
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        return produce(replace(task, path=temp))
    except ItemFailed as failure:
        raise ItemFailed(failure.item_id, failure.source_id, failure.message.replace(temp, task.path)) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def run_chunk(bundle: dict[str, Any], tasks: list[Task], sources: dict[str, bytes] | None) -> list[Result]:
    """A Ray task: produce a chunk. Shared storage: read sources in place and store the objects; otherwise decode
    the shipped bytes and send the encoded bytes back."""
    _join_run(bundle)
    out = []
    for task in tasks:
        if sources is None:
            reason = _readable(task.path)
            if reason is not None:
                raise ItemFailed(task.item_id, task.source_id, _cannot_read(task.path, reason))
            item_id, data, ext, record = produce(task)
            out.append((item_id, store_result(task, data, ext), ext, record))
        else:
            out.append(_produce_from_bytes(task, sources[task.item_id]))
    return out


# -- the driver --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_stderr() -> Iterator[io.StringIO]:
    """Ray's own messages while connecting (C++ warnings on fd 2, Python warnings) are captured, not shown: a
    failure is reported as one line naming its cause."""
    text = io.StringIO()
    sys.stderr.flush()
    saved_fd, saved_stream = os.dup(2), sys.stderr
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = text
        try:
            yield text
        finally:
            sys.stderr = saved_stream
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sink.seek(0)
            text.write(sink.read().decode("utf-8", "replace"))


def _auth_message(address: str, detail: str) -> str:
    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower()
    where = f"--ray-address {address}" if address else "Ray"
    if "no authentication token was found" in detail:
        return (f"{where}: RAY_AUTH_MODE=token but no token was found: give the cluster's token as RAY_AUTH_TOKEN, "
                "as a file named by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token (`ray get-auth-token` prints it "
                "on the head node)")
    if mode != "token":
        return (f"{where}: the Ray cluster requires token authentication and this process sends no token "
                "(RAY_AUTH_MODE is not 'token'): export RAY_AUTH_MODE=token with the cluster's token in "
                "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (`ray get-auth-token` prints it on the head "
                "node); a local test cluster can run without: RAY_AUTH_MODE=disabled ray start --head")
    return (f"{where}: the Ray cluster refused this process's authentication token (token mismatch): give the token "
            "the cluster was started with in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token "
            "(`ray get-auth-token` prints it on the head node)")


def _is_auth(text: str) -> bool:
    return any(word in text for word in ("Unauthenticated", "InvalidAuthToken", "AuthenticationError",
                                         "authentication token"))


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def preflight(address: str | None) -> None:
    """Fail in one line, within seconds, when HOST:PORT has no Ray cluster or refuses this process (instead of
    ray.init's 20 s of retries and a bare 'Failed to connect'). 'auto', ray:// and a local instance: ray.init."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadInput(f"--ray-address {address!r}: expected HOST:PORT (the head's GCS address), 'auto' or "
                       "ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise BadInput(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                       f"with `ray start --head --port {port}` or check the address") from None
    try:
        from ray._raylet import GcsClient
    except ImportError:   # another Ray: ray.init reports the failure
        return
    with _quiet_stderr():
        try:
            GcsClient(address=address)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            detail = f"{type(exc).__name__}: {exc}"
            if _is_auth(detail):
                raise BadInput(_auth_message(address, detail)) from None
            raise BadInput(f"--ray-address {address}: cannot connect to a Ray cluster there "
                           f"({_first_line(detail)})") from None


def snapshot_code() -> tuple[Path, list[Path]]:
    """A copy of the driver's augment and curate packages (what the workers import, Ray `py_modules`), taken once
    when the driver joins, so the code shipped and the identity the workers are checked against are the same bytes
    even while someone edits a development checkout. Returns (folder to remove afterwards, package folders)."""
    import shutil

    import augment
    import curate

    folder = Path(tempfile.mkdtemp(prefix="rubbersheet-code-"))
    packages = []
    for module in (augment, curate):
        source = Path(module.__file__).parent
        packages.append(Path(shutil.copytree(source, folder / source.name, ignore_dangling_symlinks=True,
                                             ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".#*", "*.swp"))))
    return folder, packages


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = address
        self.storage = os.environ.get(STORAGE_ENV, "auto").strip().lower() or "auto"
        if self.storage not in ("auto", "shared", "copy"):   # refused before anything is written
            raise BadInput(f"{STORAGE_ENV}={self.storage!r}: expected auto, shared or copy")
        self.shared: bool | None = None
        self.nodes: list[str] = []
        self._ray = None
        self._owned = False
        self._levels: dict[str, int] = {}
        self._identity: tuple[str, str] | None = None
        self._snapshot: Path | None = None

    def connect(self):
        """Join the cluster at `address` (or start a local instance); idempotent. Nothing is written; a failure is
        one line naming its cause (no cluster there, token authentication required or refused)."""
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if not ray.is_initialized():
            preflight(self.address)
            self._snapshot, packages = snapshot_code()
            env = {"py_modules": [str(p) for p in packages]}   # the workers import the driver's code
            with _quiet_stderr() as captured:
                try:
                    ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                             logging_level=logging.ERROR, configure_logging=False, runtime_env=env)
                except Exception as exc:  # noqa: BLE001 - every failure becomes one line
                    self._drop_snapshot()
                    detail = f"{type(exc).__name__}: {exc}\n{captured.getvalue()}"
                    if _is_auth(detail):
                        raise BadInput(_auth_message(self.address or "", detail)) from None
                    where = f"--ray-address {self.address}" if self.address else "a local Ray instance"
                    raise BadInput(f"{where}: cannot connect to a Ray cluster ({_first_line(str(exc))})") from None
            self._identity = code_identity(packages)
            self._owned = True
        else:   # a session the caller started keeps its runtime environment; its workers are checked all the same
            self._identity = code_identity()
            for name in ("ray", "ray.data", "ray.train"):   # Ray's warnings would interleave with the run's lines
                self._levels[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(logging.ERROR)
        self._ray = ray
        return ray

    def close(self) -> None:
        """Leave the cluster (shut down the local instance) if connect() joined it."""
        if self._ray is not None and self._owned:
            with _quiet_stderr():
                self._ray.shutdown()
            for name, level in self._levels.items():
                logging.getLogger(name).setLevel(level)
        self._drop_snapshot()
        self._ray, self._owned, self._levels = None, False, {}

    def _drop_snapshot(self) -> None:
        if self._snapshot is not None:
            import shutil

            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None

    def map(self, pipelines: dict[str, Any], tasks: list[Task]) -> Iterator[Result]:
        joined_here = self._ray is None
        ray = self.connect()
        pending: deque = deque()
        try:
            if not tasks:
                return
            pipelines = pipelines if isinstance(pipelines, Pipelines) else Pipelines(pipelines)
            identity = self._identity
            store = tasks[0].store
            self.shared = self._storage(ray, store, tasks, pipelines, identity)
            assets = pipelines.assets if self.shared else {   # without shared storage no path of the driver's
                w: replace(a, absolute=Path(a.absolute).as_uri()) for w, a in pipelines.assets.items()}  # travels
            bundle = {"token": uuid.uuid4().hex, "identity": identity, "specs": pipelines.specs, "assets": assets,
                      "shared": self.shared, "payload": None if self.shared else [ray.put(payload(pipelines.assets))]}
            bundle_ref = ray.put(bundle)
            remote = ray.remote(run_chunk).options(max_retries=3, retry_exceptions=False)

            def submit(chunk: list[Task]):
                if self.shared:
                    return remote.remote(bundle_ref, chunk, None)
                sources = ray.put(_source_bytes(chunk))   # the bytes travel; the path only as a name, for messages
                return remote.remote(bundle_ref, [replace(t, path=_uri(t.path), store="") for t in chunk],
                                     sources)

            waiting = chunks(tasks)
            window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
            pending.extend(submit(c) for c in itertools.islice(waiting, window))
            while pending:
                done = _gather(ray, pending.popleft())
                pending.extend(submit(c) for c in itertools.islice(waiting, 1))
                for item_id, payload_or_digest, ext, record in done:
                    if not self.shared:  # the workers could not see the store: the driver writes the bytes
                        from curate.store import put_object

                        payload_or_digest = put_object(store, payload_or_digest, ext)
                    yield item_id, payload_or_digest, ext, record
        finally:
            if pending:   # stop the workers, and wait until they have stopped (no write may follow the sweep)
                for ref in pending:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
                with contextlib.suppress(Exception):
                    ray.wait(list(pending), num_returns=len(pending), timeout=30)
            if joined_here:
                self.close()

    def _storage(self, ray, store: str, tasks: list[Task], pipelines: Pipelines, identity) -> bool:
        """Probe every node (code identity, what it sees); True when they all see the driver's files."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        sample = list({posixpath.dirname(t.path) if is_url(t.path) else str(Path(t.path).parent): t.path
                       for t in tasks}.values())[:64]
        files = [str(Path(a.absolute) / name) if name else a.absolute
                 for a in pipelines.assets.values() for name, _ in a.files]
        marker = _write_marker(store)
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
            probe = ray.remote(probe_node)
            refs = [probe.options(num_cpus=0, max_retries=3,
                                  scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                    .remote(marker, sample + files) for n in nodes]
            try:
                answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                raise BadInput(f"--executor ray: {len(refs)} node(s) did not answer the probe within "
                               f"{PROBE_TIMEOUT_S} s") from None
            except ray.exceptions.RayError as exc:
                raise BadInput(f"--executor ray: a worker could not start: {_ray_error(exc)}") from None
        finally:
            _remove_marker(marker)
        self.nodes = [a["node"] for a in answers]
        for answer in answers:
            if tuple(answer["identity"]) != tuple(identity):
                other = answer["identity"]
                raise WorkerRefused(f"worker on {answer['node']} runs rubbersheet {other[0]} (source {other[1]}, "
                                    f"imported from {answer['origin']}), the driver {identity[0]} (source "
                                    f"{identity[1]}): install the same version on "
                                    "every node (a Ray session started before the run should ship the code: "
                                    "ray.init(runtime_env={'py_modules': [augment, curate]}))")
        if self.storage != "auto":
            return self.storage == "shared"
        return all(a["missing"] is None for a in answers)


def _write_marker(store: str) -> str:
    """A file (or object) only this run writes in the store: a node that reads it back sees the driver's store."""
    name = f".probe-{uuid.uuid4().hex}"
    if is_url(store):
        from curate.storage import filesystem

        marker = f"{store}/objects/{name}"
        filesystem(marker).pipe_file(marker, name.encode())
        return marker
    path = Path(store) / "objects" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(name)
    return str(path)


def _remove_marker(marker: str) -> None:
    if is_url(marker):
        from curate.storage import filesystem

        with contextlib.suppress(Exception):
            filesystem(marker).rm_file(marker)
        return
    Path(marker).unlink(missing_ok=True)


def _source_bytes(chunk: list[Task]) -> dict[str, bytes]:
    from curate.storage import local_copy

    out = {}
    for task in chunk:
        try:   # a source on object storage comes through the driver's cache (its sha256 checked)
            out[task.item_id] = (local_copy(task.path) if is_url(task.path) else Path(task.path)).read_bytes()
        except OSError as exc:
            raise ItemFailed(task.item_id, task.source_id, f"the driver cannot read {_uri(task.path)} "
                                                           f"({exc.strerror or exc})") from None
    return out


def _ray_error(exc: BaseException) -> str:
    """One line for a Ray failure: its own type and the first line that says something."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith(("Traceback",
                                                                                                    "  File"))]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _gather(ray, ref) -> list[Result]:
    """One chunk's results; a failed item, a refusing worker or Ray's own failure is raised as one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (ItemFailed, BadInput)):
            raise cause from None
        raise BadInput(f"--executor ray: a task failed: {_ray_error(cause or exc)}") from None
    except ray.exceptions.RayError as exc:
        raise BadInput(f"--executor ray: {_ray_error(exc)}") from None


__all__ = ["RayExecutor", "import_ray", "preflight", "run_chunk", "probe_node", "code_identity", "snapshot_code",
           "CHUNK"]

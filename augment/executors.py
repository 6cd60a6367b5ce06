"""Where the planned items are produced. An executor maps (pipelines, tasks) to results in plan order:
(item id, object hash, extension, transform record). The local pool lives in augment.runner; this module adds Ray.

Ray: the driver plans exactly as for the local pool (same per-item seeds), ships chunks of tasks to Ray tasks and
gathers their results in order; the gate and the commit stay on the driver. Workers write media straight into the
dataset's object store when every node sees the dataset's filesystem (content-addressed writes are idempotent and
atomic); a probe file written by the driver tells whether they do. When they do not, workers send the bytes back
and the driver stores them. A worker that dies mid-task is retried by Ray; per-item seeds make the retry identical.
"""
from __future__ import annotations

import itertools
import os
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Iterator

from curate.exceptions import BadInput

_RAY_STATE: dict[str, Any] = {}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BadInput("--executor ray needs Ray: pip install 'rubbersheet[ray]'") from None
    return ray


def _ray_chunk(pipelines, tasks, write: bool):
    """Runs on a Ray worker: the pipelines are set once per worker process."""
    from augment import runner

    key = id(pipelines)
    if _RAY_STATE.get("pipelines") != key:
        runner._init_worker(pipelines)
        _RAY_STATE["pipelines"] = key
    out = []
    for task in tasks:
        item_id, data, ext, record = runner.produce(task)
        out.append((item_id, runner.store_result(task, data, ext) if write else data, ext, record))
    return out


def _probe_shared(ray, remote_probe, store: str) -> bool:
    """True when Ray workers see the dataset directory the driver sees (a probe file round trip)."""
    marker = Path(store) / "objects" / f".probe-{uuid.uuid4().hex}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(marker.name)
    try:
        return bool(ray.get(remote_probe.remote(str(marker))))
    finally:
        marker.unlink(missing_ok=True)


def _sees(path: str) -> bool:
    try:
        return Path(path).read_text() == Path(path).name
    except OSError:
        return False


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, chunk: int | None = None):
        from augment.runner import CHUNK

        self.address = address
        self.chunk = chunk or CHUNK
        self.shared: bool | None = None

    def map(self, pipelines: dict[str, Any], tasks: list) -> Iterator[tuple[str, str, str, list[dict]]]:
        import logging

        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise BadInput(f"--ray-address: cannot connect to a Ray cluster at {self.address!r} ({exc})") from None
            started = True
        pending: deque = deque()
        try:
            store = tasks[0].store if tasks else ""
            self.shared = _probe_shared(ray, ray.remote(_sees), store) if tasks else True
            run_chunk = ray.remote(max_retries=3)(_ray_chunk)
            pipelines_ref = ray.put(pipelines)
            chunks = (tasks[i:i + self.chunk] for i in range(0, len(tasks), self.chunk))
            window = max(2, 2 * int(ray.available_resources().get("CPU", 1)))
            pending.extend(run_chunk.remote(pipelines_ref, c, self.shared) for c in itertools.islice(chunks, window))
            while pending:
                try:
                    done = ray.get(pending.popleft())
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    raise cause if cause is not None else exc
                pending.extend(run_chunk.remote(pipelines_ref, c, self.shared) for c in itertools.islice(chunks, 1))
                for item_id, payload, ext, record in done:
                    if not self.shared:  # the workers could not see the store: the driver writes the bytes
                        from curate.store import put_object

                        payload = put_object(store, payload, ext)
                    yield item_id, payload, ext, record
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def make_executor(name: str, workers: int | None = None, address: str | None = None):
    from augment.runner import LocalExecutor

    if name == "local":
        if address:
            raise BadInput("--ray-address goes with --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        _import_ray()
        return RayExecutor(address or os.environ.get("RAY_ADDRESS"))
    raise BadInput(f"--executor: {name!r} is not one of local, ray")

"""Stage 2 of a run: produce the planned items. An executor maps (pipelines, tasks) to results in plan order:
(item id, object hash, extension, transform record); workers write the content-addressed objects themselves.

Local: this process (workers=1) or a process pool with a bounded window of chunks in flight, so results stream out
in plan order and memory stays flat. Ray: the driver plans exactly as for the local pool (same per-item seeds),
ships chunks of tasks to Ray tasks and gathers their results in order. Workers write media straight into the
dataset's object store when every node sees the dataset's filesystem (a probe file written by the driver tells);
otherwise they send the bytes back and the driver stores them. A worker that dies mid-task is retried by Ray;
per-item seeds make the retry identical.
"""
from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import uuid
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from augment.run.plan import Plan, Task
from curate.exceptions import BadInput

CHUNK = 16
Result = tuple[str, str, str, list[dict]]

_PIPELINES: dict[str, Any] = {}


def init_worker(pipelines: dict[str, Any]) -> None:
    """Give this process the pipelines (once per worker process)."""
    _PIPELINES.clear()
    _PIPELINES.update(pipelines)


class ItemFailed(Exception):
    """One planned item could not be produced; carries its id and source across process boundaries."""

    def __init__(self, item_id: str, source_id: str, message: str):
        super().__init__(item_id, source_id, message)
        self.item_id, self.source_id, self.message = item_id, source_id, message


def produce(task: Task) -> tuple[str, bytes, str, list[dict]]:
    """Transform one source item; returns (item id, encoded bytes, extension, record)."""
    try:
        return _produce(task)
    except (ValueError, OSError, RuntimeError) as exc:
        raise ItemFailed(task.item_id, task.source_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _produce(task: Task) -> tuple[str, bytes, str, list[dict]]:
    from curate.media import read_audio, read_image

    pipeline = _PIPELINES.get(task.tag) or _PIPELINES["*"]
    rng = np.random.default_rng(np.random.SeedSequence(list(task.entropy)))
    buffer = io.BytesIO()
    ext = task.item_id.rsplit(".", 1)[-1]
    if task.media == "audio":
        import soundfile as sf

        audio, rate = read_audio(task.path)
        out, record = pipeline.apply(audio, sample_rate=rate, rng=rng, context={"item_id": task.item_id})
        if not np.isfinite(out).all():
            raise ValueError("the pipeline produced NaN or infinite samples; nothing stored")
        peak = float(np.abs(out).max()) if out.size else 0.0
        if peak == 0.0 and float(np.abs(audio).max()) > 0.0:
            raise ValueError("the pipeline turned a non-silent clip into all zeros; nothing stored")
        subtype = "PCM_16" if peak <= 1.0 else "FLOAT"  # on_clip="allow" keeps the overs
        sf.write(buffer, out.T if out.ndim == 2 else out, rate, format=ext.upper(), subtype=subtype)
    else:
        from PIL import Image

        out, record = pipeline.apply(read_image(task.path), rng=rng, context={"item_id": task.item_id})
        Image.fromarray(out).save(buffer, format="PNG")
    data = buffer.getvalue()
    _decodes(data, task.media)
    return task.item_id, data, ext, record


def _decodes(data: bytes, media: str) -> None:
    """The encoded bytes read back as media (what the store keeps must be usable)."""
    from curate.media import MediaError, probe_bytes

    try:
        probe_bytes(data, media)
    except MediaError as exc:
        raise ValueError(f"the encoded output does not decode ({exc}); nothing stored") from None


def store_result(task: Task, data: bytes, ext: str) -> str:
    from curate.store import put_object

    try:
        return put_object(task.store, data, ext)
    except OSError as exc:
        raise ItemFailed(task.item_id, task.source_id, f"cannot store the result: {exc}") from None


def augment_one(task: Task) -> Result:
    item_id, data, ext, record = produce(task)
    return item_id, store_result(task, data, ext), ext, record


def augment_chunk(tasks: list[Task]) -> list[Result]:
    return [augment_one(t) for t in tasks]


def chunks(tasks: list[Task]) -> Iterator[list[Task]]:
    return (tasks[i:i + CHUNK] for i in range(0, len(tasks), CHUNK))


class LocalExecutor:
    """Runs tasks in this process (workers=1) or a local process pool, streaming results in plan order."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = max(1, int(workers or os.cpu_count() or 1))

    def map(self, pipelines: dict[str, Any], tasks: list[Task]) -> Iterator[Result]:
        if self.workers == 1 or len(tasks) <= 1:
            init_worker(pipelines)
            yield from (augment_one(t) for t in tasks)
            return
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        waiting = chunks(tasks)
        with context.Pool(self.workers, initializer=init_worker, initargs=(pipelines,)) as pool:
            pending = deque(pool.apply_async(augment_chunk, (c,)) for c in itertools.islice(waiting, 2 * self.workers))
            while pending:
                done = pending.popleft().get()
                for chunk in itertools.islice(waiting, 1):
                    pending.append(pool.apply_async(augment_chunk, (chunk,)))
                yield from done


_RAY_STATE: dict[str, Any] = {}


def import_ray():
    try:
        import ray
    except ImportError:
        raise BadInput("--executor ray needs Ray: pip install 'rubbersheet[ray]'") from None
    return ray


def _ray_chunk(pipelines, token: str, tasks, write: bool):
    """Runs on a Ray worker: the pipelines are set once per worker process and run (`token` names the run; an
    object id could be reused by the next run on a long-lived cluster)."""
    if _RAY_STATE.get("run") != token:
        init_worker(pipelines)
        _RAY_STATE["run"] = token
    out = []
    for task in tasks:
        item_id, data, ext, record = produce(task)
        out.append((item_id, store_result(task, data, ext) if write else data, ext, record))
    return out


def _sees(path: str) -> bool:
    try:
        return Path(path).read_text() == Path(path).name
    except OSError:
        return False


def _probe_shared(ray, store: str) -> bool:
    """True when Ray workers see the dataset directory the driver sees (a probe file round trip)."""
    marker = Path(store) / "objects" / f".probe-{uuid.uuid4().hex}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(marker.name)
    try:
        return bool(ray.get(ray.remote(_sees).remote(str(marker))))
    finally:
        marker.unlink(missing_ok=True)


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = address
        self.shared: bool | None = None

    def map(self, pipelines: dict[str, Any], tasks: list[Task]) -> Iterator[Result]:
        import logging

        ray = import_ray()
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
            self.shared = _probe_shared(ray, store) if tasks else True
            run_chunk = ray.remote(max_retries=3)(_ray_chunk)
            pipelines_ref, token = ray.put(pipelines), uuid.uuid4().hex
            waiting = chunks(tasks)
            window = max(2, 2 * int(ray.available_resources().get("CPU", 1)))
            pending.extend(run_chunk.remote(pipelines_ref, token, c, self.shared)
                           for c in itertools.islice(waiting, window))
            while pending:
                try:
                    done = ray.get(pending.popleft())
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    raise cause if cause is not None else exc
                pending.extend(run_chunk.remote(pipelines_ref, token, c, self.shared)
                               for c in itertools.islice(waiting, 1))
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
    if name == "local":
        if address:
            raise BadInput("--ray-address goes with --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        import_ray()
        return RayExecutor(address or os.environ.get("RAY_ADDRESS"))
    raise BadInput(f"--executor: {name!r} is not one of local, ray")


def execute(plan: Plan, loaded, source, dataset, executor, progress: Callable | None = None) -> list[dict[str, Any]]:
    """Produce the plan's items into `dataset`'s object store; return their manifest rows (source columns, lineage,
    tags and the transform record). A failing item stops the workers and fails the run with its id."""
    recipe = loaded.recipe
    dataset.bring_objects(source)
    work = [replace(t, store=str(dataset.path)) for t in plan.tasks]
    tasks = {t.item_id: t for t in work}
    by_id = {r["id"]: r for r in source.manifest.to_dict("records")}
    stream = executor.map(loaded.pipelines, work)
    results: Iterable = progress(stream, f"augment {recipe.name}", total=len(work)) if progress else stream
    rows = []
    try:
        for item_id, digest, ext, record in results:
            task = tasks[item_id]
            rows.append({**by_id[task.source_id], "id": item_id, "label": task.label, "object": digest, "ext": ext,
                         "tags": list(task.tags), "origin": "augmented", "source_id": task.source_id,
                         "recipe": recipe.name, "transform": json.dumps(record, sort_keys=True, separators=(",", ":"))})
    except ItemFailed as failure:
        getattr(stream, "close", lambda: None)()  # stop the workers before their half-written files are swept
        dataset.sweep_temporaries()
        stored = f"; `curate gc {dataset.path}` removes the {len(rows)} object(s) it stored" if rows else ""
        raise BadInput(f"item {failure.item_id!r} (source {failure.source_id!r}) failed: {failure.message}; "
                       f"no version written{stored}") from None
    return rows

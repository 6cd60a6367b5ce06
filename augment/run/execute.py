"""Stage 2 of a run: produce the planned items. An executor maps (pipelines, tasks) to results in plan order:
(item id, object hash, extension, transform record); workers write the content-addressed objects themselves.

Local: this process (workers=1) or a process pool with a bounded window of chunks in flight, so results stream out
in plan order and memory stays flat. Ray (augment.run.cluster): the driver plans exactly as for the local pool
(same per-item seeds) and ships chunks of tasks that carry everything they need; see that module.

What a task names is canonical before it leaves the driver: sources by their object in the output dataset (an
absolute path), file assets (noise beds) by augment.run.assets' references, which are also what the transform
records say, so a record never depends on how the recipe spelled a path or where a worker read the file.
"""
from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from augment.run.assets import collect, record_names, rename
from augment.run.plan import Plan, Task
from curate.exceptions import BadInput

CHUNK = 16
Result = tuple[str, str, str, list[dict]]

_PIPELINES: dict[str, Any] = {}
_NAMES: dict[str, str] = {}   # file path a transform of this process records -> its canonical reference


class Pipelines(dict):
    """The run's pipelines by target tag, with what travels with them: their specs as written (`specs`), the file
    assets they read (`assets`, augment.run.assets) and the canonical names of those files as this process's
    pipelines record them (`names`)."""

    def __init__(self, pipelines: dict[str, Any]):
        super().__init__(pipelines)
        self.specs = {tag: p.to_dict() for tag, p in pipelines.items()}
        self.assets = collect(self.specs)
        self.names = record_names(self.assets, lambda asset: asset.written)


def init_worker(pipelines: dict[str, Any], names: dict[str, str] | None = None) -> None:
    """Give this process the pipelines (once per worker process), and the canonical names of the files they
    read (default: those a `Pipelines` carries)."""
    _PIPELINES.clear()
    _PIPELINES.update(pipelines)
    _NAMES.clear()
    _NAMES.update(names if names is not None else getattr(pipelines, "names", {}))


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
    from curate.storage import is_url, local_copy

    if is_url(task.path):  # a source object on object storage: read through the local cache (sha256 checked)
        task = replace(task, path=str(local_copy(task.path)))
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
    return task.item_id, data, ext, rename(record, _NAMES)


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


def __getattr__(name: str):
    """`RayExecutor` and `import_ray` live in augment.run.cluster (still importable from here)."""
    if name in ("RayExecutor", "import_ray"):
        from augment.run import cluster

        return getattr(cluster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(name: str, workers: int | None = None, address: str | None = None):
    if name == "local":
        if address:
            raise BadInput("--ray-address goes with --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        from augment.run.cluster import RayExecutor, import_ray

        import_ray()
        return RayExecutor(address or os.environ.get("RAY_ADDRESS"))
    raise BadInput(f"--executor: {name!r} is not one of local, ray")


def execute(plan: Plan, loaded, source, dataset, executor, progress: Callable | None = None):
    """Produce the plan's items into `dataset`'s object store; return their manifest rows as a DataFrame (source
    columns, lineage, tags and the transform record), built column by column: a row dict per item and per source
    item cost ~40x the manifest's own size at 50k items. A failing item stops the workers and fails the run with
    its id."""
    recipe = loaded.recipe
    dataset.bring_objects(source)
    manifest = source.manifest
    stored = dict(zip(manifest["id"], zip(manifest["object"], manifest["ext"])))
    work = [canonical_task(t, dataset, *stored[t.source_id]) for t in plan.tasks]
    tasks = {t.item_id: t for t in work}
    stream = executor.map(Pipelines(loaded.pipelines), work)
    results: Iterable = progress(stream, f"augment {recipe.name}", total=len(work)) if progress else stream
    made: dict[str, list] = {"id": [], "object": [], "ext": [], "transform": []}
    try:
        for item_id, digest, ext, record in results:
            made["id"].append(item_id)
            made["object"].append(digest)
            made["ext"].append(ext)
            made["transform"].append(json.dumps(record, sort_keys=True, separators=(",", ":")))
    except ItemFailed as failure:
        getattr(stream, "close", lambda: None)()  # stop the workers before their half-written files are swept
        dataset.sweep_temporaries()
        count = len(made["id"])
        stored_note = f"; `curate gc {dataset.location}` removes the {count} object(s) it stored" if count else ""
        raise BadInput(f"item {failure.item_id!r} (source {failure.source_id!r}) failed: {failure.message}; "
                       f"no version written{stored_note}") from None
    if getattr(executor, "shared", None):  # a worker killed mid-write (and retried) may have left a temporary
        dataset.sweep_temporaries()
    return _new_rows(manifest, [tasks[i] for i in made["id"]], made, recipe.name)


def _new_rows(manifest, tasks: list[Task], made: dict[str, list], recipe: str):
    """The new items' manifest rows: each source's row (every column it has), then what the run changed."""
    import pandas as pd

    by_id = manifest.set_index("id", drop=False)
    rows = by_id.loc[[t.source_id for t in tasks]].reset_index(drop=True) if tasks else \
        pd.DataFrame(columns=manifest.columns)
    rows["id"] = made["id"]
    rows["label"] = [t.label for t in tasks]
    rows["object"], rows["ext"], rows["transform"] = made["object"], made["ext"], made["transform"]
    rows["tags"] = pd.Series([list(t.tags) for t in tasks], index=rows.index, dtype=object)
    rows["origin"] = "augmented"
    rows["source_id"] = [t.source_id for t in tasks]
    rows["recipe"] = recipe
    return rows


def canonical_task(task: Task, dataset, digest: str, ext: str) -> Task:
    """The task as it travels: the store as an absolute path, the source as its object in that store (the run
    copied the source's objects there) or, when the store lacks it, the absolute path the plan found. A store on
    object storage travels as its URL, and so does the source object: workers read and write the bucket."""
    from curate.storage import is_url

    if is_url(dataset.location):
        return replace(task, store=dataset.location, path=dataset.object_url(digest, ext))
    stored = Path(dataset.object_path(digest, ext)).absolute()
    path = stored if stored.is_file() else Path(os.path.abspath(task.path))
    return replace(task, store=os.path.abspath(dataset.path), path=str(path))

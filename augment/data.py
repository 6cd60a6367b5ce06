"""`AugmentedDataset`: a version's items with a pipeline applied on the fly, for training loops.

    import curate
    from augment.data import AugmentedDataset

    version = curate.open("datasets/speech").load("latest")
    train = AugmentedDataset(version, [{"Gain": {"gain_db": [-6, 6]}}], split="train", seed=0, targets="index")
    x, y = train[0]                      # float32 audio (n,) or (channels, n) / uint8 image, and the target
    train.set_epoch(1)                   # fresh draws for the next epoch

It follows the map-style dataset protocol (`__len__`, `__getitem__`) of torch.utils.data without importing torch:
pass it to a `DataLoader` as it is. Audio clips differ in length, so batch them with your own `collate_fn` (pad or
crop), or use `batch_size=None`.

Randomness: item i of epoch e is augmented with `numpy.random.default_rng(SeedSequence([seed, e, i]))`, so the
output depends on (seed, epoch, index) only, never on the worker that computes it, the order or the process. Items
are in id order. `set_epoch(e)` changes e; a DataLoader with `persistent_workers=False` (the default) copies the
dataset into its workers when each epoch's iterator starts, so call `set_epoch` before iterating. (Persistent
workers keep the epoch they were started with.)

Labels: `classes` is the sorted list of every label in the version (all splits, so train and dev share one
encoding), or the list you pass. `targets="label"` (default) returns the label string, `targets="index"` its
position in `classes` (an int, what a cross-entropy loss takes). `as_dict=True` returns a dict instead of a pair:
input, target, label, id, index, the transform record as a JSON string, and sample_rate for audio.

The dataset is picklable (DataLoader workers, `spawn` included): it keeps the items' ids, paths and labels and the
pipeline's description, not the version object.
"""
from __future__ import annotations

import json
import operator
import os
from typing import Any, Optional, Sequence

import numpy as np

from curate.exceptions import BadInput

TARGETS = ("label", "index")


def as_pipeline(pipeline: Any):
    """None, a Transform (Compose, ...), a list of steps in the recipe's form ([{Gain: {gain_db: [-6, 6]}}, ...])
    or one transform's dict form ({Compose: {...}}) -> a Transform or None."""
    from augment.core import Compose, Transform, from_dict
    from augment.params import ParameterError

    if pipeline is None or isinstance(pipeline, Transform):
        return pipeline
    try:
        if isinstance(pipeline, (list, tuple)):
            if not pipeline:
                raise BadInput("pipeline: an empty list of steps (pass None for no augmentation)")
            return Compose(list(pipeline))
        if isinstance(pipeline, dict):
            return from_dict(pipeline)
    except ParameterError as exc:
        raise BadInput(f"pipeline: {exc}") from None
    raise BadInput(f"pipeline: expected None, a Transform, a list of steps or a transform dict, got "
                   f"{type(pipeline).__name__}")


def _version(version: Any):
    from curate.store import Version, load_ref

    if isinstance(version, Version):
        return version
    if isinstance(version, (str, os.PathLike)):
        return load_ref(version)
    raise BadInput(f"version: expected a curate Version or a reference 'PATH[@vNNNN|@latest]', got "
                   f"{type(version).__name__}")


class AugmentedDataset:
    """Items of `version` (a curate Version or a reference) in `split` ('train', 'dev', 'test', a list of them, or
    None for all), each decoded and run through `pipeline` (see `as_pipeline`; None: the media as stored) with a
    Generator derived from (seed, epoch, index). `sample_rate` resamples audio on load (default: as stored)."""

    def __init__(self, version: Any, pipeline: Any = None, split: str | Sequence[str] | None = "train",
                 seed: int = 0, *, epoch: int = 0, sample_rate: Optional[int] = None, targets: str = "label",
                 classes: Optional[Sequence[str]] = None, as_dict: bool = False):
        self.seed = _natural("seed", seed)
        self.epoch = _natural("epoch", epoch)
        if targets not in TARGETS:
            raise BadInput(f"targets: expected one of {', '.join(TARGETS)}, got {targets!r}")
        if sample_rate is not None:
            _natural("sample_rate", sample_rate)
            if sample_rate == 0:
                raise BadInput("sample_rate: expected a positive integer, got 0")
        self.targets, self.sample_rate, self.as_dict = targets, sample_rate, bool(as_dict)
        self.pipeline = as_pipeline(pipeline)
        view = _version(version)
        self.ref = view.ref
        frame = view.manifest_with_paths(split).sort_values("id", kind="stable")
        self.split = split
        all_labels = sorted(set(view.manifest["label"]))
        self.classes = list(classes) if classes is not None else all_labels
        if len(set(self.classes)) != len(self.classes) or not all(isinstance(c, str) for c in self.classes):
            raise BadInput("classes: expected a list of distinct label strings")
        index = {c: i for i, c in enumerate(self.classes)}
        missing = sorted(set(frame["label"]) - set(index))
        if missing:
            raise BadInput(f"classes: label {missing[0]!r} of {self.ref} is not in classes ({len(missing)} missing)")
        self._items = tuple(zip(frame["id"], frame["path"], frame["label"], frame["media"]))
        self._index = index
        media = self.pipeline.pipeline_media() if self.pipeline is not None else "any"
        kinds = set(frame["media"])
        if media != "any" and kinds - {media}:
            raise BadInput(f"pipeline: an {media} pipeline cannot run on the {', '.join(sorted(kinds - {media}))} "
                           f"items of {self.ref}")

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (f"AugmentedDataset({self.ref!r}, split={self.split!r}, items={len(self)}, seed={self.seed}, "
                f"epoch={self.epoch})")

    @property
    def ids(self) -> list[str]:
        return [item[0] for item in self._items]

    @property
    def class_to_index(self) -> dict[str, int]:
        return dict(self._index)

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of `epoch` from now on (call it before each epoch's iteration)."""
        self.epoch = _natural("epoch", epoch)

    def generator(self, index: int) -> np.random.Generator:
        """The Generator item `index` is augmented with in the current epoch."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))

    def __getitem__(self, index: int):
        i = operator.index(index)
        if i < 0:
            i += len(self._items)
        if not 0 <= i < len(self._items):
            raise IndexError(f"index {index} out of range for {len(self._items)} items")
        item_id, path, label, media = self._items[i]
        data, rate = _decode(item_id, path, media, self.sample_rate)
        record: list = []
        if self.pipeline is not None:
            data, record = self.pipeline.apply(data, sample_rate=rate, rng=self.generator(i),
                                               context={"item_id": item_id})
        target = self._index[label] if self.targets == "index" else label
        if not self.as_dict:
            return data, target
        out = {"input": data, "target": target, "label": label, "id": item_id, "index": i,
               "transform": json.dumps(record, sort_keys=True, separators=(",", ":"))}
        if rate is not None:
            out["sample_rate"] = rate
        return out


def _decode(item_id: str, path: str, media: str, sample_rate: Optional[int]):
    from curate.media import read_audio, read_image

    try:
        if media == "audio":
            return read_audio(path, sample_rate=sample_rate)
        return read_image(path), None
    except (ValueError, OSError) as exc:
        raise BadInput(f"item {item_id!r}: {exc}") from None


def _natural(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 or value > 2 ** 32 - 1:
        raise BadInput(f"{name}: expected an integer in [0, 2**32 - 1], got {value!r}")
    return int(value)

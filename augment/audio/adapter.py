"""Any audiomentations waveform transform as a rubbersheet transform (the audio peer of the albumentations adapter).

Parameters are strict: a name the audiomentations class does not take is refused with a "did you mean", and a
value whose type does not match the class's annotation (`min_center_freq: float`, `zero_phase: bool`, a Literal's
choices) is refused when the transform is built, that is when a recipe is loaded; audiomentations' own checks
(mostly asserts) run then too and become one-line ParameterErrors. Callables (noise_transform, Lambda) are refused:
a recipe holds data, not code. `p` defaults to 1 (use rubbersheet's Sometimes for a probability, or pass p).

Seeding. audiomentations draws from the process-global `random` and `numpy.random` state. Each call draws one seed
from the rubbersheet Generator and, under one process-wide lock, saves both global states, seeds them from that
seed (`random.seed(seed)`; numpy's legacy state from `SeedSequence(seed)`), runs the transform, and restores both
states in a `finally`. So a call is a function of (input, seed) whatever ran before it, and the caller's global
state is the same after the call as before. The lock serialises adapter calls within a process (threads wait;
DataLoader workers are processes and do not); code of your own that draws from the global `random`/`np.random` in
another thread while an adapter call runs would share the seeded state, which rubbersheet's own transforms never do.
The lock also covers the audiomentations object, which keeps its last `.parameters` on itself: they are read
before it is released, so threads sharing one adapter never see each other's draws.

The record holds audiomentations' applied `.parameters` (arrays summarised), under "audiomentations".
"""
from __future__ import annotations

import collections.abc
import inspect
import random
import threading
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

from augment.core import Param, ParameterError, Transform, to_jsonable

INSTALL_HINT = 'audiomentations is not installed: pip install -e ".[audiomentations]"'
_GLOBAL_RNG_LOCK = threading.RLock()  # one for the process: the global RNG state it guards is one
_CONTAINERS = ("Compose", "OneOf", "SomeOf", "SpecCompose", "Lambda")


def audiomentations_module():
    try:
        import audiomentations
    except ImportError:
        raise ParameterError("name", INSTALL_HINT) from None
    return audiomentations


def _check_name(param: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ParameterError(param, f"expected an audiomentations transform name, got {name!r}")
    return name


class Audiomentations(Transform):
    """Any audiomentations waveform transform, by class name with its parameters.

    The parameters are checked strictly against the class's signature and annotations. `p` defaults to 1. The
    record holds audiomentations' applied parameters."""

    media = "audio"
    open_parameters = True  # the wrapped class's parameters, checked here against its signature
    params = {"name": Param.other(_check_name, "audiomentations transform name; its parameters go alongside")}

    def __init__(self, name: str, **params: Any):
        seed, on_clip = params.pop("seed", None), params.pop("on_clip", None)
        _check_name("name", name)
        A = audiomentations_module()
        cls = _transform_class(A, name)
        checked = _check_parameters(cls, name, params)
        super().__init__(name=name, seed=seed, on_clip=on_clip, **checked)
        kwargs = {"p": 1.0, **checked}
        try:
            self._native = cls(**kwargs)
        except (AssertionError, ValueError, TypeError) as exc:
            raise _refusal(exc, checked, name) from None

    @property
    def record_name(self) -> str:
        return f"audiomentations.{self.config['name']}"

    def sample(self, rng, data, context):
        return {"transform_seed": int(rng.integers(0, 2**63 - 1))}

    def apply_params(self, data, params, context):
        native, seed = self._native, params["transform_seed"]
        with _GLOBAL_RNG_LOCK:
            python_state, numpy_state = random.getstate(), np.random.get_state()
            try:
                random.seed(seed)
                np.random.seed(np.random.SeedSequence(seed).generate_state(8))
                # a copy: `data` may be the caller's array, and a transform could work in place (none of 0.43.1's
                # that tests/test_audio_adapters.py runs do)
                out = native(samples=data.copy(), sample_rate=context.sample_rate)
                applied = dict(native.parameters)
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)
        if not applied.pop("should_apply", True):
            params["_skip"] = "p"
        params["audiomentations"] = _summary(applied)
        return np.ascontiguousarray(out, dtype=np.float32)


def _transform_class(A, name: str) -> type:
    from audiomentations.core.transforms_interface import BaseWaveformTransform

    cls = getattr(A, name, None)
    if not isinstance(cls, type) or not issubclass(cls, BaseWaveformTransform) or name in _CONTAINERS:
        import difflib

        known = sorted(n for n in dir(A) if n not in _CONTAINERS and isinstance(getattr(A, n), type)
                       and issubclass(getattr(A, n), BaseWaveformTransform))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ParameterError("name", f"{name!r} is not an audiomentations waveform transform{hint}")
    return cls


def _check_parameters(cls: type, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Each value against the class's signature and annotation; JSON-safe values (tuples become lists)."""
    signature = inspect.signature(cls.__init__)
    accepted = {k: p for k, p in signature.parameters.items()
                if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not resolve: check the names only
        hints = {}
    checked = {}
    for key, value in params.items():
        if key not in accepted:
            import difflib

            close = difflib.get_close_matches(str(key), accepted, n=1)
            hint = f"did you mean {close[0]}?" if close else f"parameters: {', '.join(accepted)}"
            raise ParameterError(str(key), f"unknown parameter {key!r} of audiomentations.{name} ({hint})")
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise ParameterError(key, f"expected {_describe(hint)}, got {value!r} (audiomentations.{name})")
        if callable(value) and not isinstance(value, type):
            raise ParameterError(key, "a callable cannot go through the adapter (a recipe holds data, not code)")
        checked[key] = to_jsonable(str(value) if isinstance(value, Path) else value)
    return checked


def _matches(value: Any, hint: Any) -> bool:
    """Whether a recipe value fits an annotation; annotations this does not know accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if hint is str or hint is Path:
        return isinstance(value, (str, Path))
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        inner = args[0] if args else typing.Any
        return all(_matches(v, inner) for v in value)
    if origin is not None and "Callable" in str(origin):
        return False
    return True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(map(str, args))
    if hint is type(None):
        return "null"
    if isinstance(hint, type):
        return {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string",
                "Path": "a path"}.get(hint.__name__, hint.__name__)
    return str(hint).replace("collections.abc.", "")


def _refusal(exc: Exception, params: dict[str, Any], name: str) -> ParameterError:
    """audiomentations' own check failed (an assert, mostly): name the parameter its message mentions, if any."""
    message = " ".join(str(exc).split()) or f"{type(exc).__name__} in its parameter checks"
    mentioned = [k for k in params if k in message]
    param = max(mentioned, key=len) if mentioned else next(iter(params)) if len(params) == 1 else "name"
    return ParameterError(param, f"{message} (audiomentations.{name})")


def _summary(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe parameters: scalars as they are, short lists as lists, arrays as one value or as shape/dtype."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = value.item() if value.size == 1 else {"shape": list(value.shape), "dtype": str(value.dtype)}
        elif isinstance(value, (tuple, list)):
            small = len(value) <= 16 and all(isinstance(v, (int, float, str, np.generic)) for v in value)
            value = to_jsonable(list(value)) if small else f"{type(value).__name__} of {len(value)}"
        elif isinstance(value, dict):
            value = _summary(value)
        elif isinstance(value, Path):
            value = str(value)
        elif not (value is None or isinstance(value, (str, int, float, np.generic))):
            value = type(value).__name__
        out[str(key)] = to_jsonable(value)
    return out

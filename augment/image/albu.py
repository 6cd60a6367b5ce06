"""Any albumentations transform (or a whole native albumentations pipeline) as a rubbersheet transform.

Each call draws one seed from the rubbersheet Generator and seeds the albumentations transform with
`set_random_state(numpy Generator, random.Random)` from it (the Generator, np.random.default_rng(seed)'s stream, is
seeded on first use), so two transforms in a pipeline never share a stream
(albumentations' own `Compose.set_random_seed` gives every child the same seed, so two p=0.5 children always fire
together). Each thread gets its own copy of the albumentations object, because albumentations keeps its random state
and last parameters on the object.
"""
from __future__ import annotations

import _random
import copy
import random
import re
import threading
from typing import Any

import numpy as np

from augment.core import Param, ParameterError, Recorded, Transform, draw_seed, reseed, to_jsonable
from augment.params import dtype_name
from augment.image import albumentations_module

_SEED_RANDOM = _random.Random.seed  # the C seeding that random.Random.seed(an int) ends in
_CONTAINERS = ("Compose", "OneOf", "SomeOf", "Sequential", "OneOrOther", "SelectiveChannelTransform",
               "RandomOrder")


def _refusal(param: str, exc: Exception, where: str) -> ParameterError:
    """albumentations/pydantic messages are several lines; keep the field (when it names one) and the reason."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("For further information")]
    if len(lines) >= 3 and "validation error" in lines[0]:
        reason = re.sub(r"\s*\[type=.*$", "", lines[2]).removeprefix("Value error, ")
        return ParameterError(lines[1], f"{reason} ({where})")
    return ParameterError(param, f"{' '.join(lines)} ({where})")


def _check_name(param: str, name: Any) -> str | None:
    if name is not None and (not isinstance(name, str) or not name):
        raise ParameterError(param, f"expected an albumentations transform name, got {name!r}")
    return name


def _check_spec(param: str, spec: Any) -> dict | None:
    if spec is not None and not isinstance(spec, dict):
        raise ParameterError(param, f"expected an albumentations to_dict() mapping, got {type(spec).__name__}")
    return spec


class Albumentations(Transform):
    """An albumentations transform by class name with its parameters (validated strictly: a misspelled parameter
    is an error), or `spec`: a whole albumentations pipeline in its `A.to_dict` form. `p` defaults to 1 (use
    rubbersheet's Sometimes, or pass p). The record holds albumentations' applied parameters, arrays summarised."""

    media = "image"
    # the wrapped class's own parameters are checked by albumentations (strict), after `name` and `spec`
    open_parameters = True
    params = {"name": Param.other(_check_name, "albumentations transform name; its parameters go alongside"),
              "spec": Param.other(_check_spec, "a whole albumentations pipeline in its A.to_dict() form")}

    def __init__(self, name: str | None = None, spec: dict | None = None, **params: Any):
        seed, on_clip = params.pop("seed", None), params.pop("on_clip", None)
        if (name is None) == (spec is None):
            raise ParameterError("name", "give either an albumentations class name (with its parameters) or spec")
        if spec is not None and params:
            raise ParameterError("spec", f"parameters {sorted(params)} cannot be combined with spec")
        super().__init__(name=name, spec=spec, seed=seed, on_clip=on_clip,
                         **{k: to_jsonable(v) for k, v in params.items()})
        A = albumentations_module()
        if spec is not None:
            self._native = self._from_spec(A, spec)
            self.config["spec"] = A.to_dict(self._native)
        else:
            self._native = self._from_name(A, name, params)
        self._local = threading.local()

    @staticmethod
    def _from_name(A, name: str, params: dict[str, Any]):
        cls = getattr(A, name, None)
        if not isinstance(cls, type) or not issubclass(cls, A.BasicTransform) or name in _CONTAINERS:
            import difflib

            known = [n for n in dir(A) if isinstance(getattr(A, n), type) and issubclass(getattr(A, n), A.BasicTransform)]
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ParameterError("name", f"{name!r} is not an albumentations transform{hint}")
        kwargs = dict(params)
        kwargs.setdefault("p", 1.0)
        try:
            return cls(**kwargs, strict=True)
        except (ValueError, TypeError) as exc:
            match = re.search(r"Argument\(s\) '([^']+)' are not valid", str(exc))
            if match:
                unknown = match.group(1).split(", ")
                raise ParameterError(unknown[0], f"unknown parameter(s) {', '.join(map(repr, unknown))} "
                                                 f"(albumentations.{name})") from None
            raise _refusal("name", exc, f"albumentations.{name}") from None

    @staticmethod
    def _from_spec(A, spec: dict):
        try:
            return A.from_dict(spec if "transform" in spec else {"transform": spec})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            error = _refusal("spec", exc, "albumentations spec")
            # a field inside a spec is no parameter of ours: the spec is what the user gave
            raise (error if error.param == "spec" else ParameterError("spec", str(error))) from None

    def _instance(self):
        """This thread's copy of the albumentations object, with the random.Random and the numpy Generator it is
        seeded with. Both are re-seeded on every call, to the states random.Random(seed) and
        np.random.default_rng(seed) start in, rather than built anew."""
        local = self._local
        native = getattr(local, "native", None)
        if native is None:
            native = copy.deepcopy(self._native)
            if hasattr(native, "save_applied_params"):
                native.save_applied_params = True
            local.py_random, local.rng = random.Random(), np.random.Generator(np.random.PCG64(0))
            local.native = native
        return native, local.py_random, local.rng

    @property
    def record_name(self) -> str:
        return f"albumentations.{self.config.get('name') or self._native.__class__.__name__}"

    def sample(self, rng, data, context):
        return {"transform_seed": draw_seed(rng)}

    def apply_params(self, data, params, context):
        native, py_random, rng = self._instance()
        seed = params["transform_seed"]
        _SEED_RANDOM(py_random, seed)  # random.Random.seed for an int, without its argument checks
        py_random.gauss_next = None
        native.set_random_state(_GeneratorOnUse(seed, rng), py_random)
        result = native(image=data)
        recorded = context is None or context.get("_records", True)  # a plain call keeps no record (Context.records)
        applied = result.get("applied_transforms")
        if applied is not None:
            if recorded:
                params["albumentations"] = Recorded([{"transform": n, "params": _summary(p)} for n, p in applied])
            if not applied:
                params["_skip"] = "p"
        elif native.params:
            if recorded:
                params["albumentations"] = Recorded(_summary(native.params))
        else:
            params["_skip"] = "p"
        return result["image"]


class _GeneratorOnUse:
    """`rng` re-seeded to np.random.default_rng(seed)'s state on first use: most albumentations transforms draw only
    from their random.Random, and seeding a Generator costs more than many of them take to run. Any attribute (a
    method such as `uniform` or `integers`) is the Generator's, so the draws are the same."""

    __slots__ = ("_seed", "_rng", "_seeded")

    def __init__(self, seed: int, rng: np.random.Generator):
        self._seed, self._rng, self._seeded = seed, rng, False

    def __getattr__(self, name: str):
        if not self._seeded:
            reseed(self._rng, self._seed)
            self._seeded = True
        return getattr(self._rng, name)


def _summary(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe albumentations params, cheaply: scalars as they are (a non-finite float as None), short sequences
    of scalars as lists, arrays as one value or as shape/dtype, anything else by its type name."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = type(value)
        if kind is float:
            value = value if value - value == 0.0 else None
        elif kind is int or kind is str or kind is bool or value is None:
            pass
        elif isinstance(value, np.ndarray):
            value = _jsonable_scalar(value.item()) if value.size == 1 else \
                {"shape": list(value.shape), "dtype": dtype_name(value.dtype)}
        elif isinstance(value, (tuple, list)):
            small = len(value) <= 8 and all(isinstance(v, (int, float, str, np.generic)) for v in value)
            value = [_jsonable_scalar(v.item() if isinstance(v, np.generic) else v) for v in value] if small else \
                f"{type(value).__name__} of {len(value)}"
        elif isinstance(value, np.generic):
            value = _jsonable_scalar(value.item())
        elif isinstance(value, dict):
            value = _summary(value)
        else:
            value = to_jsonable(value) if isinstance(value, (str, int, float)) else type(value).__name__
        out[str(key)] = value
    return out


def _jsonable_scalar(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None
    return value if kind is int or kind is str or kind is bool or value is None else to_jsonable(value)

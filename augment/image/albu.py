"""Any albumentations transform (or a whole native albumentations pipeline) as a rubbersheet transform.

Each call draws one seed from the rubbersheet Generator and seeds the albumentations transform with
`set_random_state(numpy Generator, random.Random)` from it, so two transforms in a pipeline never share a stream
(albumentations' own `Compose.set_random_seed` gives every child the same seed, so two p=0.5 children always fire
together). Each thread gets its own copy of the albumentations object, because albumentations keeps its random state
and last parameters on the object.
"""
from __future__ import annotations

import copy
import random
import re
import threading
from typing import Any

import numpy as np

from augment.core import Transform, to_jsonable
from augment.image import albumentations_module

_CONTAINERS = ("Compose", "OneOf", "SomeOf", "Sequential", "OneOrOther", "SelectiveChannelTransform",
               "RandomOrder")


def _one_line(name: str, exc: Exception) -> str:
    """albumentations/pydantic messages are several lines; keep the field and the reason."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("For further information")]
    if len(lines) >= 3 and "validation error" in lines[0]:
        reason = re.sub(r"\s*\[type=.*$", "", lines[2])
        return f"{name}: {lines[1]}: {reason}"
    return f"{name}: {' '.join(lines)}"


class Albumentations(Transform):
    """An albumentations transform by class name with its parameters (validated strictly: a misspelled parameter
    is an error), or `spec`: a whole albumentations pipeline in its `A.to_dict` form. `p` defaults to 1 (use
    rubbersheet's Sometimes, or pass p). The record holds albumentations' applied parameters, arrays summarised."""

    media = "image"
    open_parameters = True

    def __init__(self, name: str | None = None, spec: dict | None = None, **params: Any):
        A = albumentations_module()
        if (name is None) == (spec is None):
            raise ValueError("name: give either an albumentations class name (with its parameters) or spec")
        if spec is not None:
            if params:
                raise ValueError(f"spec: parameters {sorted(params)} cannot be combined with spec")
            self._native = self._from_spec(A, spec)
            config = {"spec": A.to_dict(self._native)}
        else:
            self._native = self._from_name(A, name, params)
            config = {"name": name, **{k: to_jsonable(v) for k, v in params.items()}}
        self._local = threading.local()
        seed, on_clip = config.pop("seed", None), config.pop("on_clip", None)
        super().__init__(config, seed=seed, on_clip=on_clip)

    @staticmethod
    def _from_name(A, name: str, params: dict[str, Any]):
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected an albumentations transform name, got {name!r}")
        cls = getattr(A, name, None)
        if not isinstance(cls, type) or not issubclass(cls, A.BasicTransform) or name in _CONTAINERS:
            import difflib

            known = [n for n in dir(A) if isinstance(getattr(A, n), type) and issubclass(getattr(A, n), A.BasicTransform)]
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"name: {name!r} is not an albumentations transform{hint}")
        kwargs = {k: v for k, v in params.items() if k not in ("seed", "on_clip")}
        kwargs.setdefault("p", 1.0)
        try:
            return cls(**kwargs, strict=True)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            match = re.search(r"Argument\(s\) '([^']+)' are not valid", message)
            if match:
                raise ValueError(f"{name}: unknown parameter(s) {match.group(1)}") from None
            raise ValueError(_one_line(name, exc)) from None

    @staticmethod
    def _from_spec(A, spec: dict):
        if not isinstance(spec, dict):
            raise ValueError(f"spec: expected an albumentations to_dict() mapping, got {type(spec).__name__}")
        try:
            return A.from_dict(spec if "transform" in spec else {"transform": spec})
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(_one_line("spec", exc)) from None

    def _instance(self):
        native = getattr(self._local, "native", None)
        if native is None:
            native = self._local.native = copy.deepcopy(self._native)
            if hasattr(native, "save_applied_params"):
                native.save_applied_params = True
        return native

    @property
    def record_name(self) -> str:
        return f"albumentations.{self.config.get('name') or self._native.__class__.__name__}"

    def sample(self, rng, data, context):
        return {"transform_seed": int(rng.integers(0, 2**63 - 1))}

    def apply_params(self, data, params, context):
        native = self._instance()
        seed = params["transform_seed"]
        native.set_random_state(np.random.default_rng(seed), random.Random(seed))
        result = native(image=data)
        if "applied_transforms" in result:
            applied = result["applied_transforms"]
            params["albumentations"] = [{"transform": n, "params": _summary(p)} for n, p in applied]
            if not applied:
                params["_skip"] = "p"
        elif native.params:
            params["albumentations"] = _summary(native.params)
        else:
            params["_skip"] = "p"
        return result["image"]


def _summary(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe albumentations params, cheaply: scalars as they are, short sequences of scalars as lists, arrays
    as one value or as shape/dtype, anything else by its type name."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            value = value.item() if value.size == 1 else {"shape": list(value.shape), "dtype": str(value.dtype)}
        elif isinstance(value, (tuple, list)):
            small = len(value) <= 8 and all(isinstance(v, (int, float, str, np.generic)) for v in value)
            value = [v.item() if isinstance(v, np.generic) else v for v in value] if small else \
                f"{type(value).__name__} of {len(value)}"
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, dict):
            value = _summary(value)
        elif not (value is None or isinstance(value, (str, int, float))):
            value = type(value).__name__
        out[str(key)] = to_jsonable(value)
    return out

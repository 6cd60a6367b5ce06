"""Transform base, containers (Compose, OneOf, SomeOf, Sometimes), registry, records, to/from dict.

A transform validates its parameters in __init__ (ValueError naming the parameter), draws the random parameters of
one call in `sample(rng, data, context)` from the numpy Generator it is given, and applies them in the pure
`apply_params(data, params, context)`. The params dict is the only link between the two, so a transform object holds
no per-call state: it is thread-safe, picklable and reproducible from (input, seed) alone.

    out = t(x, sample_rate=16000, seed=7)
    out, record = t.apply(x, sample_rate=16000, rng=np.random.default_rng(7))
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from augment.inputs import apply_clip_policy, check_input

REGISTRY: dict[str, type["Transform"]] = {}
CLIP_POLICIES = ("limit", "normalize", "error", "allow")


class Context(dict):
    """Per-call facts (sample_rate, item_id, ...) and side outputs (e.g. defect masks) shared along a pipeline."""

    @property
    def sample_rate(self) -> int | None:
        return self.get("sample_rate")

    def power(self, x: np.ndarray) -> float:
        """Mean square of `x`; for the pipeline's unmodified input it reuses the value the input check computed."""
        if x is self.get("_input"):
            return self["_input_power"]
        flat = x.reshape(-1)
        return float(np.dot(flat, flat)) / flat.size


class Transform:
    """Base class. Subclasses set `media` ("audio", "image" or "any"), keep their configuration in `self.config`
    (JSON-safe, exactly the constructor's keyword arguments) and implement `sample` and `apply_params`."""

    media: ClassVar[str] = "any"
    # True when the class takes parameters it validates itself (**params), so from_dict must not pre-check names
    open_parameters: ClassVar[bool] = False

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register:
            REGISTRY[cls.__name__] = cls

    def __init__(self, config: dict[str, Any] | None = None, *, seed: int | None = None, on_clip: str | None = None):
        self.config = dict(config or {})
        self.seed = check_seed(seed)
        if on_clip is not None and on_clip not in CLIP_POLICIES:
            raise ValueError(f"on_clip: {on_clip!r} is not one of {', '.join(CLIP_POLICIES)}")
        self.on_clip = on_clip

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def record_name(self) -> str:
        """The name records use (a wrapper names what it wraps)."""
        return self.name

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.name}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    __hash__ = None  # mutable configuration: equal by value, not hashable

    # -- the two halves of a call ------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, data: np.ndarray, context: Context) -> dict[str, Any]:
        return {}

    def apply_params(self, data: np.ndarray, params: dict[str, Any], context: Context) -> np.ndarray:
        raise NotImplementedError

    # -- running ----------------------------------------------------------------------------------------------
    def run(self, data: np.ndarray, rng: np.random.Generator, context: Context) -> tuple[np.ndarray, list[dict]]:
        """One step inside a pipeline: sample, apply, and the record entries. Containers override this."""
        params = self.sample(rng, data, context)
        skipped = params.pop("_skip", None)
        if skipped:
            return data, [record_entry(self.record_name, params, False, skipped)]
        out = self.apply_params(data, params, context)
        # apply_params may add what it observed to params (a wrapped library's draws), or decide not to apply
        skipped = params.pop("_skip", None)
        return out, [record_entry(self.record_name, params, skipped is None, skipped)]

    def apply(self, data: np.ndarray, *, sample_rate: int | None = None, rng: np.random.Generator | None = None,
              context: dict | None = None) -> tuple[np.ndarray, list[dict]]:
        """Run the whole pipeline once; return (output, record). `rng` defaults to one seeded with `self.seed`.
        `context` (a dict) passes facts in (e.g. item_id) and receives side outputs (e.g. defect masks)."""
        if rng is None:
            rng = np.random.default_rng(self.seed)
        elif not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        ctx = Context(context or {})
        media = self.pipeline_media()
        data, kind, input_power = check_input(data, media, sample_rate)
        if sample_rate is not None:
            ctx["sample_rate"] = int(sample_rate)
        if input_power is not None:
            ctx["_input"], ctx["_input_power"] = data, input_power
        out, record = self.run(data, rng, ctx)
        if kind == "audio":
            out, clip = apply_clip_policy(out, self.on_clip or "limit")
            if clip is not None:
                record.append(clip)
        if context is not None:  # side outputs (e.g. defect masks) reach the caller's dict
            context.update({k: v for k, v in ctx.items() if not k.startswith("_")})
        return out, record

    def __call__(self, data: np.ndarray, *, sample_rate: int | None = None, seed: int | None = None,
                 context: dict | None = None) -> np.ndarray:
        seed = check_seed(seed) if seed is not None else self.seed
        return self.apply(data, sample_rate=sample_rate, rng=np.random.default_rng(seed), context=context)[0]

    def pipeline_media(self) -> str:
        return self.media

    # -- serialisation ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        config = {k: to_jsonable(v) for k, v in self.config.items()}
        if self.seed is not None:
            config["seed"] = self.seed
        if self.on_clip is not None:
            config["on_clip"] = self.on_clip
        return {self.name: config}

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        rebuilt = from_dict(state["config"])
        self.__dict__.update(rebuilt.__dict__)


class Container(Transform, register=False):
    """A transform made of transforms; its record is its children's records, flattened."""

    def __init__(self, transforms: Sequence[Transform | dict], **kwargs: Any):
        children = [as_transform(t, f"transforms[{i}]") for i, t in enumerate(_as_list(transforms, "transforms"))]
        if not children:
            raise ValueError("transforms: a container needs at least one transform")
        self.transforms = children
        super().__init__(**kwargs)

    def pipeline_media(self) -> str:
        kinds = {t.pipeline_media() for t in self.transforms} - {"any"}
        if len(kinds) > 1:
            raise ValueError(f"transforms: mixes {' and '.join(sorted(kinds))} transforms in one pipeline")
        return kinds.pop() if kinds else "any"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out[self.name] = {"transforms": [t.to_dict() for t in self.transforms], **out[self.name]}
        return out

    def run_chosen(self, chosen: set[int], data, rng, context) -> tuple[np.ndarray, list[dict]]:
        """Run the children whose index is in `chosen`, in order; record the others as not chosen."""
        record: list[dict] = []
        for i, t in enumerate(self.transforms):
            if i in chosen:
                data, part = t.run(data, rng, context)
            else:
                part = skipped_records(t, "not chosen")
            record.extend(part)
        return data, record

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        extra = "".join(f", {k}={v!r}" for k, v in self.config.items())
        return f"{self.name}([{inner}]{extra})"


def skipped_records(transform: Transform, reason: str) -> list[dict]:
    """Records for a transform (or every leaf of a container) that did not run."""
    if isinstance(transform, Container):
        return [r for t in transform.transforms for r in skipped_records(t, reason)]
    if isinstance(transform, Sometimes):
        return skipped_records(transform.transform, reason)
    return [record_entry(transform.record_name, {}, False, reason)]


class Compose(Container):
    """Apply every transform in order."""

    def run(self, data, rng, context):
        record: list[dict] = []
        for t in self.transforms:
            data, part = t.run(data, rng, context)
            record.extend(part)
        return data, record


class OneOf(Container):
    """Apply exactly one transform, chosen with `weights` (default: equal). The others are recorded as not chosen."""

    def __init__(self, transforms: Sequence[Transform | dict], weights: Sequence[float] | None = None, **kwargs):
        super().__init__(transforms, **kwargs)
        if weights is not None:
            weights = [float(w) for w in _as_list(weights, "weights")]
            if len(weights) != len(self.transforms):
                raise ValueError(f"weights: {len(weights)} weights for {len(self.transforms)} transforms")
            self.config["weights"] = weights
        self._cumulative = cumulative_weights(weights or [1.0] * len(self.transforms), "weights")

    def run(self, data, rng, context):
        return self.run_chosen({choose(rng, self._cumulative)}, data, rng, context)


class SomeOf(Container):
    """Apply `n` transforms (an int, or a [min, max] range drawn per call), chosen without replacement, kept in
    their listed order."""

    def __init__(self, transforms: Sequence[Transform | dict], n: int | Sequence[int] = 1, **kwargs):
        super().__init__(transforms, **kwargs)
        if isinstance(n, (int, np.integer)) and not isinstance(n, bool):
            low = high = int(n)
        else:
            low, high = check_range("n", n, integer=True)
            self.config["n"] = [low, high]
        if not 0 <= low <= high <= len(self.transforms):
            raise ValueError(f"n: must lie in [0, {len(self.transforms)}] with min <= max, got {n!r}")
        self.config.setdefault("n", low)
        self._n = (low, high)

    def run(self, data, rng, context):
        count = int(rng.integers(self._n[0], self._n[1] + 1))
        chosen = set(rng.choice(len(self.transforms), size=count, replace=False).tolist())
        return self.run_chosen(chosen, data, rng, context)


class Sometimes(Transform):
    """Apply `transform` with probability `p`."""

    def __init__(self, p: float, transform: Transform | dict, **kwargs):
        p = check_number("p", p, low=0.0, high=1.0)
        self.transform = as_transform(transform, "transform")
        super().__init__({"p": p}, **kwargs)

    def pipeline_media(self) -> str:
        return self.transform.pipeline_media()

    def run(self, data, rng, context):
        if rng.random() < self.config["p"]:
            return self.transform.run(data, rng, context)
        return data, skipped_records(self.transform, "p")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out[self.name]["transform"] = self.transform.to_dict()
        return out

    def __repr__(self) -> str:
        return f"Sometimes({self.config['p']!r}, {self.transform!r})"


# -- registry and dict form ------------------------------------------------------------------------------------
def _load_families(name: str) -> None:
    """Import the transform families lazily: audio is cheap; image pulls in albumentations only when needed."""
    import importlib

    for module in ("augment.audio", "augment.image"):
        if name in REGISTRY:
            return
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def transform_class(name: str) -> type[Transform]:
    if name not in REGISTRY:
        _load_families(name)
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown transform {name!r}{hint}; `augment transforms` lists them")
    return REGISTRY[name]


def from_dict(spec: dict[str, Any]) -> Transform:
    """Build a transform from its dict form `{"Name": {param: value, ...}}` (the form recipes use)."""
    if isinstance(spec, Transform):
        return spec
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"transform spec must be a one-key mapping {{Name: {{params}}}}, got {spec!r}")
    (name, params), = spec.items()
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValueError(f"{name}: parameters must be a mapping, got {type(params).__name__}")
    cls = transform_class(name)
    allowed = parameter_names(cls)
    for key in params if not cls.open_parameters else ():
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]}?" if close else f"parameters: {', '.join(allowed)}"
            raise ValueError(f"{name}: unknown parameter {key!r} ({hint})")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}") from None


def parameter_names(cls: type[Transform]) -> list[str]:
    import inspect

    names = [p.name for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return names + ["seed", "on_clip"]


def as_transform(value: Transform | dict, where: str) -> Transform:
    if isinstance(value, Transform):
        return value
    if isinstance(value, dict):
        return from_dict(value)
    raise ValueError(f"{where}: expected a transform or its dict form, got {type(value).__name__}")


# -- records and parameter checks -------------------------------------------------------------------------------
def record_entry(name: str, params: dict[str, Any], applied: bool, reason: str | None = None) -> dict[str, Any]:
    """One record line. Params whose key starts with '_' are working data (e.g. a noise segment), not recorded."""
    recorded = {k: to_jsonable(v) for k, v in params.items() if not k.startswith("_")}
    entry = {"transform": name, "params": recorded, "applied": applied}
    if reason:
        entry["reason"] = reason
    return entry


def to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size <= 16:
            return to_jsonable(value.tolist())
        return {"shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = int(value) if integer else float(value)
    if integer and not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: {value!r} is outside [{low}, {high}]")
    return value


def check_range(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                integer: bool = False) -> tuple[float, float]:
    """A [low, high] range (or one number meaning a fixed value): finite, low <= high, inside the bounds."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name}: expected [low, high] with low <= high, got {value!r}")
    a = check_number(name, value[0], low=low, high=high, integer=integer)
    b = check_number(name, value[1], low=low, high=high, integer=integer)
    if a > b:
        raise ValueError(f"{name}: expected [low, high] with low <= high, got {list(value)!r}")
    return a, b


def cumulative_weights(weights: Sequence[float], name: str) -> np.ndarray:
    """Normalised cumulative weights for `choose`; weights must be finite, >= 0 and not all 0."""
    values = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ValueError(f"{name}: must be finite, >= 0 and not all 0")
    cumulative = np.cumsum(values / values.sum())
    cumulative[-1] = 1.0
    return cumulative


def choose(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """Index drawn with the probabilities behind `cumulative` (one uniform draw; much cheaper than rng.choice(p=))."""
    return int(np.searchsorted(cumulative, rng.random(), side="right"))


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Draw from [low, high]; a fixed value still consumes one draw, so pipelines stay aligned across configs."""
    return float(rng.uniform(bounds[0], bounds[1]))


def _as_list(value: Any, name: str) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
        return list(value)
    raise ValueError(f"{name}: expected a list, got {type(value).__name__}")


def catalogue() -> list[dict[str, Any]]:
    """Every registered transform with its parameters and defaults (for `augment transforms`)."""
    import inspect

    _load_families("")
    rows = []
    for name, cls in sorted(REGISTRY.items()):
        signature = inspect.signature(cls.__init__)
        params = []
        for p in list(signature.parameters.values())[1:]:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            params.append({"name": p.name, "default": None if p.default is p.empty else to_jsonable(p.default),
                           "required": p.default is p.empty})
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        doc = doc.split(". ")[0].rstrip(".") + "."
        rows.append({"name": name, "media": cls.media, "doc": doc, "params": params})
    return rows

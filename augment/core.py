"""Transform base, containers (Compose, OneOf, SomeOf, Sometimes), registry, records, to/from dict.

A transform declares its parameters (`params`, see augment.inputs.Param); the base constructor checks every value
against that declaration and raises ParameterError naming the parameter, so the constructor, `to_dict`, the
catalogue and recipe errors share one source. A call draws its random parameters in `sample(rng, data, context)`
from the numpy Generator it is given and applies them in the pure `apply_params(data, params, context)`. The params
dict is the only link between the two, so a transform object holds no per-call state: it is thread-safe, picklable
and reproducible from (input, seed) alone.

    out = t(x, sample_rate=16000, seed=7)
    out, record = t.apply(x, sample_rate=16000, rng=np.random.default_rng(7))

Nesting. Only the outermost pipeline takes a `seed`: nested transforms draw from its Generator (a nested seed would
give every item the same draws, so a container refuses a child that has one). `on_clip` (audio) is honoured at every
level: a nested step's policy is applied to its own output right after it runs, and it stays the policy in force
for the rest of the pipeline. The final output gets the outermost pipeline's `on_clip` when it sets one, else the
policy in force, else `limit`. So a step that says `allow` keeps its overs (and a later step's) unless a later step
or the outermost pipeline says otherwise.
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar, Sequence

import numpy as np

from augment.inputs import apply_clip_policy, check_input
from augment.params import (ON_CLIP, REQUIRED, Param, ParameterError,  # noqa: F401  (re-exported for transforms)
                            check_list, check_number, check_range, check_seed, cumulative_weights, defaults,
                            parameter_names, parameter_rows, to_jsonable, unknown_parameter)

REGISTRY: dict[str, type["Transform"]] = {}
NESTED_SEED = "only the outermost pipeline takes a seed; nested transforms draw from its Generator"


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
    """Base class. Subclasses set `media` ("audio", "image" or "any") and `params` (one Param per constructor
    parameter, in the constructor's order), pass every parameter to `super().__init__(name=value, ...)`, and
    implement `sample` and `apply_params`. `self.config` holds the checked values (JSON-safe)."""

    media: ClassVar[str] = "any"
    params: ClassVar[dict[str, Param]] = {}
    # True when the class also takes parameters it validates itself (**params), beyond those in `params`
    open_parameters: ClassVar[bool] = False

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if register:
            declared = list(defaults(cls))
            if declared != list(cls.params):  # a class whose catalogue would lie is a bug: fail at import
                raise TypeError(f"{cls.__name__}: constructor parameters {declared} do not match its params "
                                f"{list(cls.params)}")
            REGISTRY[cls.__name__] = cls

    def __init__(self, *, seed: int | None = None, on_clip: str | None = None, **values: Any):
        config = {}
        for key, value in values.items():
            param = type(self).params.get(key)
            if param is None and not type(self).open_parameters:
                raise unknown_parameter(key, parameter_names(type(self)))
            checked = param.check(key, value) if param is not None else value
            if checked is not None:
                config[key] = checked
        self.config = config
        self.seed = check_seed(seed)
        if on_clip is not None:
            ON_CLIP.check("on_clip", on_clip)
            if self.pipeline_media() == "image":
                raise ParameterError("on_clip", "applies to audio; image pipelines have no clipping to handle")
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
        ctx["_kind"] = kind
        if sample_rate is not None:
            ctx["sample_rate"] = int(sample_rate)
        if input_power is not None:
            ctx["_input"], ctx["_input_power"] = data, input_power
        out, record = self.run(data, rng, ctx)
        if kind == "audio":
            policy = self.on_clip or ctx.get("_policy") or "limit"
            # an output a nested step already checked under the same policy needs no second entry
            if not (out is ctx.get("_checked") and policy == ctx.get("_policy")):
                out, clip = apply_clip_policy(out, policy)
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


def run_step(step: Transform, data: np.ndarray, rng: np.random.Generator, context: Context):
    """A container's child: its run, then (audio) its own on_clip, which becomes the policy in force."""
    data, record = step.run(data, rng, context)
    if step.on_clip is not None and context.get("_kind") == "audio":
        data, clip = apply_clip_policy(data, step.on_clip)
        if clip is not None:
            record = [*record, clip]
        context["_policy"], context["_checked"] = step.on_clip, data
    return data, record


def adopt(value: Transform | dict, where: str) -> Transform:
    """A container's child, built from its dict form if need be; errors name it by its place (`transforms[0]`)."""
    child = as_transform(value, where)
    if child.seed is not None:
        raise ParameterError(f"{where}.{child.name}.seed", NESTED_SEED)
    return child


class Container(Transform, register=False):
    """A transform made of transforms; its record is its children's records, flattened."""

    params = {"transforms": Param.child("list of transforms (objects or {Name: {params}})")}

    def __init__(self, transforms: Sequence[Transform | dict], **kwargs: Any):
        items = check_list("transforms", transforms)
        if not items:
            raise ParameterError("transforms", "a container needs at least one transform")
        self.transforms = [adopt(t, f"transforms[{i}]") for i, t in enumerate(items)]
        super().__init__(**kwargs)

    def pipeline_media(self) -> str:
        kinds = {t.pipeline_media() for t in self.transforms} - {"any"}
        if len(kinds) > 1:
            raise ParameterError("transforms", f"mixes {' and '.join(sorted(kinds))} transforms in one pipeline")
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
                data, part = run_step(t, data, rng, context)
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
            data, part = run_step(t, data, rng, context)
            record.extend(part)
        return data, record


def _check_weights(name: str, value: Any) -> list[float] | None:
    return None if value is None else [check_number(name, w) for w in check_list(name, value)]


def _check_count(name: str, value: Any) -> int | list[int]:
    """A fixed count stays an int; a [min, max] range is kept as a list (the to_dict form tells them apart)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    return list(check_range(name, value, integer=True))


class OneOf(Container):
    """Apply exactly one transform, chosen with `weights` (default: equal). The others are recorded as not chosen."""

    params = {**Container.params, "weights": Param.other(_check_weights, "list of numbers >= 0, one per transform")}

    def __init__(self, transforms: Sequence[Transform | dict], weights: Sequence[float] | None = None, **kwargs):
        super().__init__(transforms, weights=weights, **kwargs)
        weights = self.config.get("weights")
        if weights is not None and len(weights) != len(self.transforms):
            raise ParameterError("weights", f"{len(weights)} weights for {len(self.transforms)} transforms")
        self._cumulative = cumulative_weights(weights or [1.0] * len(self.transforms), "weights")

    def run(self, data, rng, context):
        return self.run_chosen({choose(rng, self._cumulative)}, data, rng, context)


class SomeOf(Container):
    """Apply `n` transforms (an int, or a [min, max] range drawn per call), chosen without replacement, kept in
    their listed order."""

    params = {**Container.params, "n": Param.other(_check_count, "integer or [min, max], at most the transforms")}

    def __init__(self, transforms: Sequence[Transform | dict], n: int | Sequence[int] = 1, **kwargs):
        super().__init__(transforms, n=n, **kwargs)
        count = self.config["n"]
        low, high = (count, count) if isinstance(count, int) else count
        if not 0 <= low <= high <= len(self.transforms):
            raise ParameterError("n", f"must lie in [0, {len(self.transforms)}] with min <= max, got {n!r}")
        self._n = (low, high)

    def run(self, data, rng, context):
        count = int(rng.integers(self._n[0], self._n[1] + 1))
        chosen = set(rng.choice(len(self.transforms), size=count, replace=False).tolist())
        return self.run_chosen(chosen, data, rng, context)


class Sometimes(Transform):
    """Apply `transform` with probability `p`."""

    params = {"p": Param.number(0.0, 1.0), "transform": Param.child("a transform (object or {Name: {params}})")}

    def __init__(self, p: float, transform: Transform | dict, **kwargs):
        self.transform = adopt(transform, "transform")
        super().__init__(p=p, **kwargs)

    def pipeline_media(self) -> str:
        return self.transform.pipeline_media()

    def run(self, data, rng, context):
        if rng.random() < self.config["p"]:
            return run_step(self.transform, data, rng, context)
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
    """Build a transform from its dict form `{"Name": {param: value, ...}}` (the form recipes use).

    A bad parameter is a ParameterError naming it relative to this transform (`snr_db`; in a container's child
    `transforms[0].Gain.gain_db`); a spec that is not `{Name: mapping}` or names no transform is a ValueError."""
    if isinstance(spec, Transform):
        return spec
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"transform spec must be a one-key mapping {{Name: {{params}}}}, got {spec!r}")
    (name, params), = spec.items()
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValueError(f"parameters of {name} must be a mapping, got {type(params).__name__}")
    cls = transform_class(name)
    for key, default in defaults(cls).items():
        if default is REQUIRED and key not in params:
            raise ParameterError(key, "required (it has no default)")
    try:
        return cls(**params)
    except TypeError as exc:  # e.g. a non-string key; the class's own checks raise ParameterError
        raise ValueError(f"parameters of {name}: {exc}") from None


def as_transform(value: Transform | dict, where: str) -> Transform:
    """`value` as a transform; any error building it is a ParameterError whose param starts at `where`."""
    if isinstance(value, Transform):
        return value
    if not isinstance(value, dict):
        raise ParameterError(where, f"expected a transform or its dict form, got {type(value).__name__}")
    place = f"{where}.{next(iter(value))}" if len(value) == 1 else where
    try:
        return from_dict(value)
    except ParameterError as exc:
        raise exc.within(place) from None
    except ValueError as exc:
        raise ParameterError(place, str(exc)) from None


# -- records and parameter checks -------------------------------------------------------------------------------
def record_entry(name: str, params: dict[str, Any], applied: bool, reason: str | None = None) -> dict[str, Any]:
    """One record line. Params whose key starts with '_' are working data (e.g. a noise segment), not recorded."""
    recorded = {k: to_jsonable(v) for k, v in params.items() if not k.startswith("_")}
    entry = {"transform": name, "params": recorded, "applied": applied}
    if reason:
        entry["reason"] = reason
    return entry


def choose(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """Index drawn with the probabilities behind `cumulative` (one uniform draw; much cheaper than rng.choice(p=))."""
    return int(np.searchsorted(cumulative, rng.random(), side="right"))


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Draw from [low, high]; a fixed value still consumes one draw, so pipelines stay aligned across configs."""
    return float(rng.uniform(bounds[0], bounds[1]))


def catalogue() -> list[dict[str, Any]]:
    """Every registered transform with its parameters: default, whether required, and what it accepts (from the
    class's `params`, the declaration its constructor checks against), for `augment transforms`."""
    _load_families("")
    rows = []
    for name, cls in sorted(REGISTRY.items()):
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        doc = doc.split(". ")[0].rstrip(".") + "."
        rows.append({"name": name, "media": cls.media, "doc": doc, "params": parameter_rows(cls)})
    return rows

"""Transform base, containers (Compose, OneOf, SomeOf, Sometimes), registry, records, to/from dict.

A transform declares its parameters (`params`, see augment.inputs.Param); the base constructor checks every value
against that declaration and raises ParameterError naming the parameter, so the constructor, `to_dict`, the
catalogue and recipe errors share one source. A call draws its random parameters in `sample(rng, data, context)`
from the numpy Generator it is given and applies them in the pure `apply_params(data, params, context)`. The params
dict is the only link between the two, so a transform object holds no per-call state: it is thread-safe, picklable
and reproducible from (input, seed) alone.

    out = t(x, sample_rate=16000, seed=7)
    out, record = t.apply(x, sample_rate=16000, rng=np.random.default_rng(7))   # the same as seed=7

Nesting. Only the outermost pipeline takes a `seed`: nested transforms draw from its Generator (a nested seed would
give every item the same draws, so a container refuses a child that has one). `on_clip` (audio) is honoured at every
level: a nested step's policy is applied to its own output right after it runs, and it stays the policy in force
for the rest of the pipeline. The final output gets the outermost pipeline's `on_clip` when it sets one, else the
policy in force, else `limit`. So a step that says `allow` keeps its overs (and a later step's) unless a later step
or the outermost pipeline says otherwise.
"""
from __future__ import annotations

import bisect
import inspect
import threading
from typing import Any, ClassVar, Sequence

import numpy as np
from numpy.random.bit_generator import ISpawnableSeedSequence

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

    @property
    def records(self) -> bool:
        """Whether the caller keeps the record (apply does; a plain call, t(x, seed=...), does not): when false,
        steps build no record entries and wrapped libraries' draws are not summarised."""
        return self.get("_records", True)

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
        """One step inside a pipeline: sample, apply, and the record entries (none when the caller keeps no record:
        see Context.records). Containers override this."""
        params = self.sample(rng, data, context)
        skipped = params.pop("_skip", None)
        if skipped:
            out, applied = data, False
        else:
            out = self.apply_params(data, params, context)
            # apply_params may add what it observed to params (a wrapped library's draws), or decide not to apply
            skipped = params.pop("_skip", None)
            applied = skipped is None
        if not context.get("_records", True):
            return out, []
        return out, [record_entry(self.record_name, params, applied, skipped)]

    def apply(self, data: np.ndarray, *, sample_rate: int | None = None, rng: np.random.Generator | None = None,
              context: dict | None = None) -> tuple[np.ndarray, list[dict]]:
        """Run the whole pipeline once; return (output, record). `rng` defaults to one seeded with `self.seed`.
        `context` (a dict) passes facts in (e.g. item_id) and receives side outputs (e.g. defect masks)."""
        if rng is None:
            return self._apply_seeded(data, sample_rate, self.seed, context)
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        return self._apply(data, sample_rate, rng, context)

    def __call__(self, data: np.ndarray, *, sample_rate: int | None = None, seed: int | None = None,
                 context: dict | None = None) -> np.ndarray:
        seed = check_seed(seed) if seed is not None else self.seed
        # the output alone: the same bytes as apply(...)[0], without building the record nobody will read
        return self._apply_seeded(data, sample_rate, seed, context, records=False)[0]

    def _apply_seeded(self, data, sample_rate, seed: int | None, context,
                      records: bool = True) -> tuple[np.ndarray, list[dict]]:
        """apply() with np.random.default_rng(seed)'s stream, from a Generator of this thread's pool (re-seeding one
        costs a fraction of building one; it goes back to the pool when the call is over)."""
        if seed is None:
            return self._apply(data, sample_rate, np.random.default_rng(), context, records)
        rng = borrow_generator(seed)
        try:
            return self._apply(data, sample_rate, rng, context, records)
        finally:
            return_generator(rng)

    def _apply(self, data, sample_rate, rng: np.random.Generator, context,
               records: bool = True) -> tuple[np.ndarray, list[dict]]:
        ctx = Context(context) if context else Context()
        if not records:
            ctx["_records"] = False
        data, kind, input_power = check_input(data, self.pipeline_media(), sample_rate)
        ctx["_kind"] = kind
        if sample_rate is not None:
            ctx["sample_rate"] = int(sample_rate)
        if input_power is not None:
            ctx["_input"], ctx["_input_power"] = data, input_power
        out, record = self.run(data, rng, ctx)
        if kind == "audio":
            policy = self.on_clip or ctx.get("_policy") or "limit"
            # an output a nested step already checked under the same policy needs no second entry; "allow" leaves
            # the samples as they are, so without a record to write there is nothing to look at
            if not (out is ctx.get("_checked") and policy == ctx.get("_policy")) and (records or policy != "allow"):
                out, clip = apply_clip_policy(out, policy)
                if clip is not None:
                    record.append(clip)
        if context is not None:  # side outputs (e.g. defect masks) reach the caller's dict
            context.update({k: v for k, v in ctx.items() if not k.startswith("_")})
        return out, record

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
def load_families(name: str) -> None:
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
        load_families(name)
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
class Recorded:
    """A params value already in its JSON-safe record form (e.g. a wrapped library's summarised draws): the record
    takes `value` as it is instead of walking it again."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def record_entry(name: str, params: dict[str, Any], applied: bool, reason: str | None = None) -> dict[str, Any]:
    """One record line. Params whose key starts with '_' are working data (e.g. a noise segment), not recorded."""
    recorded = {}
    for key, value in params.items():
        if key.startswith("_"):
            continue
        kind = type(value)  # the common scalars are already JSON-safe (a finite float: value - value == 0)
        if kind is str or kind is int or kind is bool or (kind is float and value - value == 0.0):
            recorded[key] = value
        else:
            recorded[key] = value.value if kind is Recorded else to_jsonable(value)
    entry = {"transform": name, "params": recorded, "applied": applied}
    if reason:
        entry["reason"] = reason
    return entry


def choose(rng: np.random.Generator, cumulative: Sequence[float]) -> int:
    """Index drawn with the probabilities behind `cumulative` (one uniform draw; much cheaper than rng.choice(p=)).
    The same index as np.searchsorted(cumulative, u, side="right"); a list is searched fastest."""
    return bisect.bisect_right(cumulative, rng.random())


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Draw from [low, high]; a fixed value still consumes one draw, so pipelines stay aligned across configs.
    The same double as rng.uniform(low, high) (numpy computes low + (high - low) * next_double), without its
    array-argument handling."""
    low, high = bounds
    return low + (high - low) * rng.random()


_SEED_SPAN = 2**63 - 1  # draw_seed draws from [0, 2**63 - 1)
_M64 = (1 << 64) - 1
_SEED_THRESHOLD = (_M64 - (_SEED_SPAN - 1)) % _SEED_SPAN


def draw_seed(rng: np.random.Generator) -> int:
    """int(rng.integers(0, 2**63 - 1)): a seed for a nested random process (a noise signal, a wrapped library).
    On a PCG64 Generator the same number is computed from the raw 64-bit draws (numpy's bounded draw for a
    64-bit range is Lemire's multiply-and-reject on next_uint64, which random_raw returns for PCG64), without
    integers()' argument handling; other bit generators go through integers()."""
    bit_generator = rng.bit_generator
    if type(bit_generator) is not np.random.PCG64:
        return int(rng.integers(0, _SEED_SPAN))
    product = bit_generator.random_raw() * _SEED_SPAN
    if product & _M64 < _SEED_SPAN:  # possibly in the biased zone: numpy's rejection test, exactly
        while product & _M64 < _SEED_THRESHOLD:
            product = bit_generator.random_raw() * _SEED_SPAN
    return product >> 64


# -- per-call Generators ------------------------------------------------------------------------------------------
# numpy.random.default_rng(seed) costs ~12-20 µs a call (several times that in a loop that streams audio or images
# through the caches), most of it in SeedSequence.generate_state (an errstate wrapper, small arrays) and in the PCG64
# object built around it rather than in the hash. Two cheaper routes to the very same state:
#   reseed / borrow_generator: compute the state in Python integers from the SeedSequence's 128-bit pool
#     (generate_state's hash, then PCG64's seeding) and set it on a Generator that is reused (a plain call
#     t(x, seed=...) borrows one from its thread's pool for the length of the call);
#   generator: a new Generator, PCG64 handed those words through a stand-in seed sequence.
# tests/test_fast_paths.py compares both with default_rng.
_M32 = 0xFFFFFFFF
_STATE_HASH = (0x8B51F9DD,)  # SeedSequence.generate_state's running multiplier, INIT_B times MULT_B per word
for _ in range(8):
    _STATE_HASH += (_STATE_HASH[-1] * 0x58F38DED & _M32,)


def _pcg64_seed_words(pool: np.ndarray) -> list[int]:
    """SeedSequence.generate_state(4, np.uint64) of a seed sequence whose (4-word) pool is `pool`."""
    a, b, c, d = pool.tolist()
    h = _STATE_HASH
    w0, w1, w2, w3 = (a ^ h[0]) * h[1] & _M32, (b ^ h[1]) * h[2] & _M32, (c ^ h[2]) * h[3] & _M32, \
        (d ^ h[3]) * h[4] & _M32
    w4, w5, w6, w7 = (a ^ h[4]) * h[5] & _M32, (b ^ h[5]) * h[6] & _M32, (c ^ h[6]) * h[7] & _M32, \
        (d ^ h[7]) * h[8] & _M32
    return [w0 ^ w0 >> 16 | (w1 ^ w1 >> 16) << 32, w2 ^ w2 >> 16 | (w3 ^ w3 >> 16) << 32,
            w4 ^ w4 >> 16 | (w5 ^ w5 >> 16) << 32, w6 ^ w6 >> 16 | (w7 ^ w7 >> 16) << 32]


class _SeedSequenceView(ISpawnableSeedSequence):
    """A numpy SeedSequence that answers PCG64's one request (4 uint64 words) from Python integers; everything
    else (spawn, entropy, pickling, other requests) is the wrapped SeedSequence's own."""

    __slots__ = ("seed_seq",)

    def __init__(self, seed_seq: np.random.SeedSequence):
        self.seed_seq = seed_seq

    def generate_state(self, n_words, dtype=np.uint32):
        if n_words == 4 and dtype is np.uint64 and len(self.seed_seq.pool) == 4:
            return np.array(_pcg64_seed_words(self.seed_seq.pool), dtype=np.uint64)
        return self.seed_seq.generate_state(n_words, dtype)

    def spawn(self, n_children):
        return self.seed_seq.spawn(n_children)

    def __getattr__(self, name: str):
        return getattr(self.seed_seq, name)

    def __repr__(self) -> str:
        return repr(self.seed_seq)

    def __reduce__(self):
        return self.seed_seq.__reduce__()


_PCG64_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_M128 = (1 << 128) - 1


def _pcg64_state(seed: Any) -> dict[str, Any]:
    """PCG64(np.random.SeedSequence(seed)).state, computed from the seed sequence's pool (PCG64's seeding:
    pcg_setseq_128_srandom_r with the four words generate_state(4, uint64) gives)."""
    w0, w1, w2, w3 = _pcg64_seed_words(np.random.SeedSequence(seed).pool)
    inc = ((w2 << 64 | w3) << 1 | 1) & _M128
    state = ((inc + (w0 << 64 | w1)) * _PCG64_MULTIPLIER + inc) & _M128
    return {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}


class _Pool(threading.local):
    def __init__(self):
        self.free: list[np.random.Generator] = []


_POOL = _Pool()


def reseed(rng: np.random.Generator, seed: Any) -> np.random.Generator:
    """Put a PCG64 Generator in the state np.random.default_rng(seed) starts in (seed: an int >= 0 or anything else
    SeedSequence takes), which costs a fraction of building a new one; returns it."""
    rng.bit_generator.state = _pcg64_state(seed)
    return rng


def borrow_generator(seed: Any) -> np.random.Generator:
    """A Generator in the state np.random.default_rng(seed) starts in, taken from this thread's pool and re-seeded.
    For the length of one call: hand it back with return_generator once the call is over, and keep no reference to
    it (it is re-seeded for the next call)."""
    free = _POOL.free
    return reseed(free.pop() if free else np.random.Generator(np.random.PCG64(0)), seed)


def return_generator(rng: np.random.Generator) -> None:
    _POOL.free.append(rng)


def generator(entropy: Any) -> np.random.Generator:
    """numpy.random.default_rng(entropy), the same Generator state bit for bit, built faster: `entropy` is what
    default_rng takes (an int >= 0, a sequence of them or a SeedSequence; None: fresh entropy from the OS).
    `rng.bit_generator.seed_seq` stands in for the SeedSequence (its entropy, spawn and pickling are the same)."""
    if isinstance(entropy, np.random.SeedSequence):
        seed_seq = entropy
    elif entropy is None or isinstance(entropy, (np.random.BitGenerator, np.random.Generator)):
        return np.random.default_rng(entropy)
    else:
        seed_seq = np.random.SeedSequence(entropy)
    return np.random.Generator(np.random.PCG64(_SeedSequenceView(seed_seq)))


def catalogue() -> list[dict[str, Any]]:
    """Every registered transform with its parameters: default, whether required, and what it accepts (from the
    class's `params`, the declaration its constructor checks against), for `augment transforms`."""
    load_families("")
    rows = []
    for name, cls in sorted(REGISTRY.items()):
        doc = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        doc = doc.split(". ")[0].rstrip(".") + "."
        rows.append({"name": name, "media": cls.media, "doc": doc, "params": parameter_rows(cls)})
    return rows

"""Transform parameters: each transform class declares one `Param` per constructor parameter; the base class checks
values with it and every refusal is a `ParameterError` naming the parameter. The catalogue rows and the JSON-safe
forms the configuration keeps come from here too."""
from __future__ import annotations

import functools
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from augment.inputs import CLIP_POLICIES


class ParameterError(ValueError):
    """A bad parameter. `param` is its dotted name relative to the transform being built (`snr_db`; inside a
    container `transforms[0].Gain.snr_db`), `message` what is wrong with it; str() is "param: message"."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param, self.message = param, message

    def __reduce__(self):  # ValueError would pickle only the joined text; workers send errors back pickled
        return type(self), (self.param, self.message)

    def within(self, prefix: str) -> "ParameterError":
        """The same error seen from an enclosing spec (`prefix` is where this transform sits in it)."""
        return ParameterError(f"{prefix}.{self.param}" if prefix else self.param, self.message)

    @property
    def loc(self) -> tuple[str | int, ...]:
        """`param` as keys and list indices: "transforms[0].Gain.gain_db" -> ("transforms", 0, "Gain", "gain_db")."""
        return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", self.param) if p)


@dataclass(frozen=True)
class Param:
    """How one constructor parameter is checked, kept in the configuration and described in the catalogue.

    A transform declares `params = {name: Param...}` in its constructor's order; the base class checks every value
    with it, so the constructor, `to_dict` (the checked values), `augment transforms` (`describe`) and recipe errors
    (ParameterError) all come from this one declaration. A checked value of None means "not given": not kept."""

    kind: str  # range | number | choice | flag | other | child (a container's transforms: it builds them itself)
    low: float | None = None
    high: float | None = None
    integer: bool = False
    choices: tuple[str, ...] = ()
    checker: Callable[[str, Any], Any] | None = None
    text: str = ""

    @classmethod
    def range(cls, low: float, high: float, integer: bool = False) -> "Param":
        """A [lo, hi] range to draw from (or one number: a fixed value), both ends within [low, high]; kept as a
        list."""
        return cls("range", low, high, integer)

    @classmethod
    def number(cls, low: float, high: float, integer: bool = False) -> "Param":
        return cls("number", low, high, integer)

    @classmethod
    def choice(cls, *options: str) -> "Param":
        return cls("choice", choices=options)

    @classmethod
    def flag(cls) -> "Param":
        return cls("flag")

    @classmethod
    def other(cls, checker: Callable[[str, Any], Any], text: str) -> "Param":
        return cls("other", checker=checker, text=text)

    @classmethod
    def child(cls, text: str) -> "Param":
        return cls("child", text=text)

    def check(self, name: str, value: Any) -> Any:
        if self.kind == "range":
            return list(check_range(name, value, low=self.low, high=self.high, integer=self.integer))
        if self.kind == "number":
            return check_number(name, value, low=self.low, high=self.high, integer=self.integer)
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ParameterError(name, f"{value!r} is not one of {', '.join(self.choices)}")
            return value
        if self.kind == "flag":
            if not isinstance(value, (bool, np.bool_)):
                raise ParameterError(name, f"expected true or false, got {value!r}")
            return bool(value)
        if self.kind == "other":
            return self.checker(name, value)
        raise ParameterError(name, "is built by its container, not passed as a value")

    def describe(self) -> str:
        what = "integer" if self.integer else "number"
        if self.kind == "range":
            return f"{what} or [low, high], within [{self.low:g}, {self.high:g}]"
        if self.kind == "number":
            return f"{what} in [{self.low:g}, {self.high:g}]"
        if self.kind == "choice":
            return " | ".join(self.choices)
        return "true | false" if self.kind == "flag" else self.text


ON_CLIP = Param.choice(*CLIP_POLICIES)
REQUIRED = inspect.Parameter.empty  # the default of a parameter that has none


@functools.lru_cache(maxsize=None)
def _signature(cls: type) -> tuple[tuple[str, Any], ...]:
    return tuple((p.name, p.default) for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                 if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))


def defaults(cls: type) -> dict[str, Any]:
    """{parameter: default} of a transform class, in order; a required one has inspect.Parameter.empty."""
    return dict(_signature(cls))


def parameter_names(cls: type) -> list[str]:
    return [*defaults(cls), "seed", *(["on_clip"] if cls.media != "image" else [])]


def unknown_parameter(key: Any, allowed: Sequence[str]) -> ParameterError:
    import difflib

    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"did you mean {close[0]}?" if close else f"parameters: {', '.join(allowed)}"
    return ParameterError(str(key), f"unknown parameter {key!r} ({hint})")


def parameter_rows(cls: type) -> list[dict[str, Any]]:
    """The catalogue's rows for a transform class: its declared parameters, then on_clip where it applies."""
    rows = [{"name": key, "default": None if default is REQUIRED else to_jsonable(default),
             "required": default is REQUIRED, "accepts": cls.params[key].describe()}
            for key, default in defaults(cls).items()]
    if cls.media != "image":
        rows.append({"name": "on_clip", "default": None, "required": False,
                     "accepts": f"{ON_CLIP.describe()} (audio; default: the enclosing pipeline's, else limit)"})
    return rows


_DTYPE_NAMES: dict[np.dtype, str] = {}


def dtype_name(dtype: np.dtype) -> str:
    """str(dtype), remembered (numpy builds the name in Python, ~4 µs a call)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


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
        return {"shape": list(value.shape), "dtype": dtype_name(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError("seed", f"expected a non-negative integer, got {seed!r}")
    return int(seed)


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 integer: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(name, f"expected a number, got {value!r}")
    if isinstance(value, int) and abs(value) > 2 ** 63:  # beyond any float's exact range and any documented bound
        raise ParameterError(name, f"{str(value)[:20]}... ({len(str(value))} digits) is out of range")
    if not math.isfinite(value):
        raise ParameterError(name, f"must be finite, got {value!r}")
    if integer and value != int(value):  # 2.5 is not a count; 8000.0 is
        raise ParameterError(name, f"expected an integer, got {value!r}")
    value = int(value) if integer else float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(name, f"{value!r} is outside [{low}, {high}]")
    return value


def check_range(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                integer: bool = False) -> tuple[float, float]:
    """A [low, high] range (or one number meaning a fixed value): finite, low <= high, inside the bounds."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ParameterError(name, f"expected [low, high] with low <= high, got {value!r}")
    a = check_number(name, value[0], low=low, high=high, integer=integer)
    b = check_number(name, value[1], low=low, high=high, integer=integer)
    if a > b:
        raise ParameterError(name, f"expected [low, high] with low <= high, got {list(value)!r}")
    return a, b


def check_list(name: str, value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
        return list(value)
    raise ParameterError(name, f"expected a list, got {type(value).__name__}")


def cumulative_weights(weights: Iterable[float], name: str) -> np.ndarray:
    """Normalised cumulative weights for a draw; weights must be finite, >= 0 and not all 0."""
    values = np.asarray(list(weights), dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
        raise ParameterError(name, "must be finite, >= 0 and not all 0")
    cumulative = np.cumsum(values / values.sum())
    cumulative[-1] = 1.0
    return cumulative

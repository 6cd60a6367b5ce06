"""augment: transforms and recipes that generate targeted training data (audio and image).

    from augment import Compose, OneOf, Sometimes, from_dict
    from augment.audio import AddBackgroundNoise, Gain

    import augment
    result = augment.run("recipes/speech_cafe_noise.yaml", budget=20)   # -> augment.RunOutcome (augment.api)

`augment.run` is the run-spine package (augment/run/) made callable: calling it runs a recipe (augment.api.run);
its submodules (augment.run.plan, ...) stay importable as before.
"""
import types as _types

import augment.run as _spine
from augment.api import RunOutcome
from augment.api import run as _run_recipe
from augment.core import REGISTRY, Compose, OneOf, SomeOf, Sometimes, Transform, catalogue, from_dict
from augment.params import ParameterError


class _CallableSpine(_types.ModuleType):
    """`augment.run(recipe, **overrides)`: the spine package answers a call with augment.api.run."""

    def __call__(self, recipe, /, **options):
        return _run_recipe(recipe, **options)

    __call__.__doc__ = _run_recipe.__doc__


_spine.__class__ = _CallableSpine
run = _spine

__all__ = ["Transform", "Compose", "OneOf", "SomeOf", "Sometimes", "from_dict", "catalogue", "REGISTRY",
           "ParameterError", "run", "RunOutcome"]

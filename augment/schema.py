"""The JSON schema of recipes, for editors (`augment recipe schema > recipe.schema.json`, then the first line of a
recipe: `# yaml-language-server: $schema=recipe.schema.json`).

It is the recipe model's own schema (augment.recipe.Recipe) with the two places the model leaves open filled in:
  pipeline steps   one of the registered transforms, `{Name: {parameter: value}}`, each parameter described by its
                   declaration (augment.params.Param: ranges with their bounds, choices, flags), unknown parameters
                   refused; containers (Compose, OneOf, SomeOf, Sometimes) hold steps themselves;
  curation         the gate config (curate.checks.gate.GateConfig).
The schema helps an editor complete and flag; the recipe's validation stays the judge (a schema cannot say, e.g.,
that a noise folder exists or that low <= high).
"""
from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://rubbersheet.invalid/recipe.schema.json"


def recipe_schema() -> dict[str, Any]:
    from augment.recipe import Recipe
    from curate.checks.gate import GateConfig

    schema = Recipe.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    gate = GateConfig.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(gate.pop("$defs", {}))
    defs["GateConfig"] = gate
    defs["Step"] = {"description": "One transform: {Name: {parameter: value}}.", "oneOf": _steps()}
    steps = {"type": "array", "items": {"$ref": "#/$defs/Step"}, "minItems": 1}
    properties = schema["properties"]
    properties["pipeline"] = {"anyOf": [steps, {"type": "null"}], "description": "The steps, applied in order."}
    target = {"$ref": "#/$defs/TargetPipeline"}
    properties["pipelines"] = {"anyOf": [{"type": "object", "additionalProperties": {"anyOf": [steps, target]}},
                                         {"type": "null"}],
                               "description": "One pipeline per target tag ('*': every other tag)."}
    if "TargetPipeline" in defs:
        defs["TargetPipeline"]["properties"]["steps"] = steps
    properties["curation"] = {"$ref": "#/$defs/GateConfig", "description": "The gate config (curate.checks.gate)."}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _steps() -> list[dict[str, Any]]:
    from augment.core import REGISTRY, load_families
    from augment.inputs import CLIP_POLICIES
    from augment.params import REQUIRED, defaults

    load_families("")
    out = []
    for name, cls in sorted(REGISTRY.items()):
        declared = getattr(cls, "params", {})
        params = {key: _param(declared.get(key), key) for key in defaults(cls)}
        if cls.media != "image":
            params["on_clip"] = {"enum": list(CLIP_POLICIES)}
        required = [key for key, default in defaults(cls).items() if default is REQUIRED]
        # an adapter (Albumentations, Audiomentations) passes further parameters on to its library, which checks them
        body = {"type": "object", "properties": params, "additionalProperties": _takes_more(cls)}
        if required:
            body["required"] = required
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        out.append({"type": "object", "title": name, "description": doc, "properties": {name: body},
                    "required": [name], "additionalProperties": False})
    return out


def _takes_more(cls) -> bool:
    """An adapter: a `name` of the library's transform, whose own parameters its constructor passes on."""
    import inspect

    own = cls.__dict__.get("__init__")
    return own is not None and "name" in getattr(cls, "params", {}) and \
        any(p.kind is p.VAR_KEYWORD for p in inspect.signature(own).parameters.values())


def _param(param, key: str) -> dict[str, Any]:
    if param is None:
        return {}
    number = {"type": "integer" if param.integer else "number"}
    bounds = {k: v for k, v in (("minimum", param.low), ("maximum", param.high)) if v is not None}
    if param.kind == "range":
        one = {**number, **bounds}
        return {"description": param.describe(), "anyOf": [one, {"type": "array", "items": one, "minItems": 2,
                                                                  "maxItems": 2}]}
    if param.kind == "number":
        return {**number, **bounds, "description": param.describe()}
    if param.kind == "choice":
        return {"enum": list(param.choices)}
    if param.kind == "flag":
        return {"type": "boolean"}
    if param.kind == "child":  # `transforms` holds steps, Sometimes' `transform` one step
        step = {"$ref": "#/$defs/Step"}
        return {"type": "array", "items": step} if key == "transforms" else step
    return {"description": param.describe()}

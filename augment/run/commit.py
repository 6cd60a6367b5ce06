"""Stage 4 of a run: the version's record (recipe, seed, command, source, plan, evaluation) and the write itself,
through curate.publish: staged, reported on, then committed, or moved to DATASET/rejected/ when the gate refuses."""
from __future__ import annotations

import json
import shlex
import sys
from typing import Any

from curate.publish import Outcome, publish


def record(loaded, source, plan, evaluation: dict[str, Any] | None, command: str | None = None,
           sweep: dict[str, Any] | None = None) -> dict[str, Any]:
    recipe = loaded.recipe
    return {"recipe": {"name": recipe.name, "text": loaded.text, "path": str(loaded.path),
                       "overrides": list(loaded.overrides)}, "seed": recipe.seed,
            "command": command or shlex.join(sys.argv), "evaluation": evaluation, "sweep": sweep,
            "source": {"kind": "recipe", "dataset": source.ref, "version": source.name,
                       "fingerprint": source.info.get("fingerprint"), "targets": loaded.budgets,
                       "plan": plan.summary()}}


def write(loaded, dataset, candidate, source, plan, gate, evaluation, *, force: bool = False,
          command: str | None = None, sweep: dict[str, Any] | None = None,
          logs: dict[str, bytes] | None = None) -> Outcome:
    """`logs`: the evaluation model's output (evaluation-before.log, evaluation-after.log), kept with the version."""
    if loaded.overrides:  # the file as written, then what ran: the overrides applied
        import yaml

        logs = {**(logs or {}), "recipe.resolved.yaml": yaml.safe_dump(loaded.resolved(), sort_keys=False).encode()}
    evidence = {"recipe.yaml": loaded.text.encode("utf-8"),
                "plan.json": (json.dumps(plan.summary(), indent=2) + "\n").encode(), **(logs or {})}
    return publish(dataset, candidate.manifest, source=source, gate=gate, label=loaded.recipe.name, force=force,
                   info=record(loaded, source, plan, evaluation, command, sweep), evidence=evidence,
                   logs=logs)

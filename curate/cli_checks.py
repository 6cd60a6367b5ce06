"""`curate check` (the curation gate on a version) and `curate split` (balanced splits as a new version)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from curate.cli import _console, app
from curate.console import EXIT_FAILED, progress

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def print_gate(result: dict, console) -> None:
    for finding in result["findings"]:
        style = _STYLE[finding["severity"]]
        console.print(f"[{style}]{finding['severity'].upper():7s}[/{style}] {finding['check']}: ", end="")
        console.print(finding["message"], markup=False)
    counts = result["counts"]
    verdict = "PASSED" if result["passed"] else "FAILED"
    console.print(f"gate {verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} "
                  f"info (blocking: {', '.join(result['block_on'])})")


@app.command()
def check(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
          config: Optional[Path] = typer.Option(None, "--config", help="Gate config YAML (checks, thresholds, "
                                                "block_on)."),
          predictions: Optional[Path] = typer.Option(None, "--predictions", help="Model predictions CSV (for "
                                                     "label issues and confusable pairs)."),
          json_out: Optional[Path] = typer.Option(None, "--json", help="Write the gate result as JSON.")) -> None:
    """Run the curation checks on a version (against its parent); exit 1 if the gate fails."""
    from curate.checks.gate import load_config, run_gate
    from curate.store import load_ref

    version = load_ref(ref)
    gate_config = load_config(config)
    if predictions is not None:
        if not predictions.is_file():
            from curate.exceptions import BadInput

            raise BadInput(f"--predictions: {predictions} does not exist")
        gate_config = gate_config.model_copy(update={"predictions": str(predictions)})
    parent_name = version.info.get("parent")
    parent = version.dataset.load(parent_name) if parent_name else None
    result = run_gate(version, parent, gate_config, progress=progress)
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")
    print_gate(result, _console())
    if not result["passed"]:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def split(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
          ratios: str = typer.Option("0.6,0.2,0.2", "--ratios", help="train,dev,test fractions."),
          small_data_max: int = typer.Option(10_000, "--small-data-max", min=0, help="Above this many items, a "
                                             "stable hash of the group decides.")) -> None:
    """Assign balanced, group-aware splits to items without one; commit the result as a new version."""
    from curate.checks.gate import parse_config
    from curate.checks.splits import assign_splits, check as check_splits
    from curate.exceptions import BadInput
    from curate.store import load_ref

    try:
        fractions = [float(x) for x in ratios.split(",")]
    except ValueError:
        raise BadInput(f"--ratios: {ratios!r} is not three comma-separated numbers") from None
    version = load_ref(ref)
    frame = version.manifest.copy()
    new = assign_splits(frame, fractions, small_data_max)
    changed = sum(a != b for a, b in zip(frame["split"], new))
    if changed == 0:
        print(f"{version.ref}: every item already has a split; nothing to do")
        return
    frame["split"] = new
    committed = version.dataset.commit(frame, {}, {"parent": version.name})
    console = _console()
    console.print(f"{committed.ref}: assigned a split to {changed} item(s) (ratios {ratios}); sizes "
                  f"{committed.info['counts']['split']}", markup=False)
    for finding in check_splits(committed, version, parse_config({}).section("splits")):
        console.print(f"{finding.severity}: {finding.message}", markup=False)


@app.command()
def report(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
           out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.json/.md/.html (default: "
                                              "report-<dataset>-<version> here)."),
           config: Optional[Path] = typer.Option(None, "--config", help="Gate config YAML for the re-run checks.")) -> None:
    """Write the curation report of a version (the gate is re-run against its parent)."""
    from curate.checks.gate import load_config, run_gate
    from curate.report import build_report, write_report
    from curate.store import load_ref

    version = load_ref(ref)
    parent_name = version.info.get("parent")
    parent = version.dataset.load(parent_name) if parent_name else None
    gate_config = load_config(config)
    targets = list((version.info.get("source") or {}).get("targets") or [])
    if targets and not gate_config.realism.target_tags:
        gate_config.realism.target_tags = targets
    gate = run_gate(version, parent, gate_config, progress=progress)
    target = out or Path(f"report-{version.dataset.name}-{version.name}")
    paths = write_report(target, build_report(version, parent, gate, version.info), version, parent)
    sizes = ", ".join(f"{name} {p.stat().st_size / 1024:.0f} KB" for name, p in paths.items())
    print(f"{version.ref}: report written to {target} ({sizes})")

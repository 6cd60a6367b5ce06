"""`curate check` (the curation gate on a version) and `curate split` (balanced splits as a new version)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from curate.cli import JSON_HELP, make_console, app
from curate.console import EXIT_FAILED, print_json, progress, write_json

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def print_gate(result, console) -> None:
    """A GateResult as lines: new findings first, then the source's known (inherited) issues, then the verdict."""
    for finding in result.new + result.inherited:
        style = _STYLE[finding.severity]
        mark = " (inherited)" if finding.status == "inherited" else ""
        console.print(f"[{style}]{finding.severity.upper():7s}[/{style}] {finding.check}{mark}: ", end="")
        console.print(finding.message, markup=False)
    def tally(findings) -> str:
        return ", ".join(f"{sum(f.severity == s for f in findings)} {s}(s)" for s in ("error", "warning"))

    verdict = "PASSED" if result.passed else "FAILED"
    known = ""
    if any(f.severity != "info" for f in result.inherited):
        known = (f"; known issues of the source: {tally(result.inherited)}"
                 f"{' (blocking: block_on_inherited)' if result.block_on_inherited else ', not blocking'}")
    console.print(f"gate {verdict}: {tally(result.new)} from this change (blocking: {', '.join(result.block_on)})"
                  f"{known}", markup=False)



@app.command()
def check(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
          config: Optional[Path] = typer.Option(None, "--config", help="Gate config YAML (checks, thresholds, "
                                                "block_on)."),
          predictions: Optional[Path] = typer.Option(None, "--predictions", help="Model predictions CSV (for "
                                                     "label issues and confusable pairs)."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
          json_out: Optional[Path] = typer.Option(None, "--json-out", help="Write the gate result as JSON to this "
                                                  "file.")) -> None:
    """Run the curation checks on a version against the version it was made from; exit 1 if a new finding blocks
    (`block_on_inherited: true` in the config makes the source's known issues block too)."""
    from curate.api import check as check_api   # the command is a thin layer over curate.check(...)
    from curate.checks.gate import load_config
    from curate.store import load_ref

    version = load_ref(ref)
    gate_config = load_config(config)
    if predictions is not None:
        if not predictions.is_file():
            from curate.exceptions import BadInput

            raise BadInput(f"--predictions: {predictions} does not exist")
        gate_config = gate_config.model_copy(update={"predictions": str(predictions)})
    result = check_api(version, gate_config, progress=progress)
    if json_out:
        write_json(json_out, result.to_dict())
    if as_json:
        print_json(result.to_dict())
    else:
        print_gate(result, make_console())
    if not result.passed:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def split(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
          ratios: str = typer.Option("0.6,0.2,0.2", "--ratios", help="train,dev,test fractions."),
          small_data_max: int = typer.Option(10_000, "--small-data-max", min=0, help="Above this many items, a "
                                             "stable hash of the group decides."),
          config: Optional[Path] = typer.Option(None, "--config", help="Gate config YAML for the split's gate."),
          force: bool = typer.Option(False, "--force", help="Write even if the gate fails (recorded as forced)."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Assign balanced, group-aware splits to items without one (a group, identical inputs and near-duplicates
    stay in one split); gate and commit the result as a new version."""
    from curate.checks.gate import load_config, run_gate
    from curate.checks.similarity import near_duplicates
    from curate.checks.splits import assign_splits
    from curate.exceptions import BadInput
    from curate.publish import publish
    from curate.store import load_ref
    from curate.view import MemoryView

    try:
        fractions = [float(x) for x in ratios.split(",")]
    except ValueError:
        raise BadInput(f"--ratios: {ratios!r} is not three comma-separated numbers") from None
    gate_config = load_config(config)
    version = load_ref(ref)
    latest = version.dataset.latest()
    if version.name != latest:
        raise BadInput(f"{ref}: not the latest version ({latest}); a split made from it would drop what the newer "
                       f"versions added: split {version.dataset.path}@latest")
    frame = version.manifest.copy()
    found = near_duplicates(version, gate_config.leakage.near_duplicate_ratio) if \
        gate_config.leakage.near_duplicates else None
    together = [(found.ids[x], found.ids[y]) for x, y in zip(found.i, found.j)] if found is not None else []
    new = assign_splits(frame, fractions, small_data_max, together)
    changed = sum(a != b for a, b in zip(frame["split"], new))
    if changed == 0:
        version.dataset.try_recover()
        if as_json:
            print_json({"status": "unchanged", "version": version.ref, "assigned": 0})
        else:
            print(f"{version.ref}: every item already has a split; nothing to do")
        return
    frame["split"] = new
    gate = run_gate(MemoryView(version.dataset, frame), version, gate_config, progress=progress)
    outcome = publish(version.dataset, frame, source=version, gate=gate, label="split", force=force,
                      info={"source": {"kind": "split", "ratios": fractions, "from": version.ref,
                                       "assigned": changed}})
    if as_json:
        committed = outcome.version if outcome.status != "rejected" else None
        print_json({"status": outcome.status, "version": committed.ref if committed is not None else None,
                    "assigned": changed, "ratios": fractions,
                    "counts": committed.info["counts"] if committed is not None else None,
                    "gate": gate.to_dict(),
                    "rejected_dir": str(outcome.rejected_dir) if outcome.status == "rejected" else None})
        if outcome.status == "rejected":
            raise typer.Exit(EXIT_FAILED)
        return
    console = make_console()
    print_gate(gate, console)
    if outcome.status == "rejected":
        console.print(f"nothing written; the gate's findings are in {outcome.rejected_dir}", markup=False)
        raise typer.Exit(EXIT_FAILED)
    committed = outcome.version
    console.print(f"{committed.ref}: assigned a split to {changed} item(s) (ratios {ratios}); sizes "
                  f"{committed.info['counts']['split']}", markup=False)


@app.command()
def report(ref: str = typer.Argument(..., help="Dataset reference PATH[@vNNNN|@latest]."),
           to: Optional[Path] = typer.Option(None, "--to", help="Folder to write report.json/.md/.html into "
                                             "(default: report-<dataset>-<version> here)."),
           out: Optional[Path] = typer.Option(None, "--out", hidden=True, help="Deprecated: --to."),
           config: Optional[Path] = typer.Option(None, "--config", help="Gate config YAML for the re-run checks."),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Write the curation report of a version (the gate is re-run against its parent)."""
    from curate.api import source_of
    from curate.checks.gate import load_config, run_gate
    from curate.report import build_report, write_report
    from curate.store import load_ref, refuse_inside_dataset

    version = load_ref(ref)
    source = source_of(version)
    gate_config = load_config(config)
    targets = list((version.info.get("source") or {}).get("targets") or [])
    if targets and not gate_config.realism.target_tags:
        gate_config.realism.target_tags = targets
    gate = run_gate(version, source, gate_config, progress=progress)
    target = to or out or Path(f"report-{version.dataset.name}-{version.name}")
    refuse_inside_dataset(target, "--to" if to or not out else "--out")
    paths = write_report(target, build_report(version, source, gate, version.info), version, source)
    if as_json:
        print_json({"version": version.ref, "to": str(target), "files": {name: str(p) for name, p in paths.items()},
                    "passed": gate.passed, "report": str(target / "report.html")})
        return
    sizes = ", ".join(f"{name} {p.stat().st_size / 1024:.0f} KB" for name, p in paths.items())
    print(f"{version.ref}: report written to {target} ({sizes})")
    print(f"report: {target / 'report.html'}")

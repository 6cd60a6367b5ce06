"""`curate review apply` and `curate review summary`: a reviewer's decisions from report.html as a new version."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from curate.cli import JSON_HELP, make_console, app
from curate.console import print_json

review_app = typer.Typer(no_args_is_help=True, help="Apply a reviewer's decisions (review.json from report.html).")
app.add_typer(review_app, name="review")


def _print_changes(changes: dict, console) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(changes["counts"].items())) or "no decisions"
    console.print(f"decisions: {counts}", markup=False)
    console.print(f"remove {len(changes['reject_augmented'])} augmented item(s)", markup=False)
    if changes["reject_real"]:
        console.print(f"remove {len(changes['reject_real'])} REAL item(s) (not augmented): "
                      f"{', '.join(changes['reject_real'][:10])}", markup=False)
    for r in changes["relabel"]:
        console.print(f"relabel {r['id']}: {r['from']!r} -> {r['to']!r}", markup=False)
    if changes["new_labels"]:
        console.print(f"new label(s): {', '.join(map(repr, changes['new_labels']))}", markup=False)


@review_app.command("summary")
def summary(ref: str = typer.Argument(..., help="The version the review was made on: PATH[@vNNNN]."),
            review: Optional[Path] = typer.Argument(None, help="review.json downloaded from report.html."),
            dataset: Optional[str] = typer.Option(None, "--dataset", hidden=True,
                                                  help="Deprecated: `review summary REVIEW --dataset REF`."),
            allow_new_labels: bool = typer.Option(False, "--allow-new-labels", help="Accept relabels to labels the "
                                                  "dataset does not have yet."),
            as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Print what applying a review would change (same arguments as `review apply`); writes nothing."""
    from curate.exceptions import BadInput
    from curate.review import plan, read_review
    from curate.store import load_ref

    if dataset is not None:  # the old order: REVIEW --dataset REF
        if review is not None:
            raise BadInput("review summary: give REF REVIEW, or the old form REVIEW --dataset REF, not both")
        ref, review = dataset, Path(ref)
    elif review is None:
        raise BadInput("review summary: missing argument REVIEW (usage: curate review summary REF REVIEW)")
    data, _ = read_review(review)
    changes = plan(load_ref(ref), data, allow_new_labels, str(review))
    if as_json:
        print_json(changes)
        return
    _print_changes(changes, make_console())


@review_app.command("apply")
def apply(ref: str = typer.Argument(..., help="The version the review was made on: PATH[@vNNNN]."),
          review: Path = typer.Argument(..., help="review.json downloaded from report.html."),
          to: Optional[Path] = typer.Option(None, "--to", help="Write into this dataset (default: the same one)."),
          allow_new_labels: bool = typer.Option(False, "--allow-new-labels", help="Accept relabels to labels the "
                                                "dataset does not have yet."),
          onto_latest: bool = typer.Option(False, "--onto-latest", help="The reviewed version is not the latest: "
                                           "apply the decisions to @latest instead."),
          force: bool = typer.Option(False, "--force", help="Write even if the gate fails (recorded as forced)."),
          as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Gate and write the next version: rejected items removed, relabels applied and recorded per item."""
    from curate.cli_checks import print_gate
    from curate.console import EXIT_FAILED
    from curate.review import applied_as, apply_review, read_review
    from curate.store import load_ref, open_dataset, refuse_inside_dataset

    data, sha256 = read_review(review)
    version = load_ref(ref)
    done = applied_as(version, sha256) if not to else None
    if done is not None:
        version.dataset.try_recover()
        if as_json:
            print_json({"status": "already-applied", "version": done.ref, "review_sha256": sha256})
            return
        make_console().print(f"{review}: already applied as {done.ref}; nothing written", markup=False)
        return
    if to:
        refuse_inside_dataset(to, "--to", dataset_itself=True)
    target = open_dataset(to, create=True) if to else None
    outcome, changes = apply_review(version, data, sha256, target, allow_new_labels, str(review), onto_latest, force)
    if as_json:
        committed = outcome.version if outcome.status == "committed" else None
        print_json({"status": outcome.status, "version": outcome.version.ref if outcome.version is not None else None,
                    "items": committed.info["counts"]["items"] if committed is not None else None,
                    "review_sha256": sha256, "changes": changes,
                    "gate": outcome.gate.to_dict() if outcome.gate is not None else None,
                    "rejected_dir": str(outcome.rejected_dir) if outcome.status == "rejected" else None})
        if outcome.status == "rejected":
            raise typer.Exit(EXIT_FAILED)
        return
    console = make_console()
    _print_changes(changes, console)
    if outcome.status == "unchanged":
        console.print(f"{outcome.version.ref}: the decisions change nothing; nothing written", markup=False)
        return
    print_gate(outcome.gate, console)
    if outcome.status == "rejected":
        console.print(f"nothing written; the gate's findings are in {outcome.rejected_dir}", markup=False)
        raise typer.Exit(EXIT_FAILED)
    committed = outcome.version
    console.print(f"{committed.ref}: {committed.info['counts']['items']} item(s); review {sha256[:12]} recorded",
                  markup=False)

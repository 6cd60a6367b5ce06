"""`curate review apply` and `curate review summary`: a reviewer's decisions from report.html as a new version."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from curate.cli import _console, app

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
def summary(review: Path = typer.Argument(..., help="review.json downloaded from report.html."),
            ref: str = typer.Option(..., "--dataset", help="The version the review was made on: PATH[@vNNNN]."),
            allow_new_labels: bool = typer.Option(False, "--allow-new-labels")) -> None:
    """Print what applying a review would change; writes nothing."""
    from curate.review import plan, read_review
    from curate.store import load_ref

    data, _ = read_review(review)
    _print_changes(plan(load_ref(ref), data, allow_new_labels, str(review)), _console())


@review_app.command("apply")
def apply(ref: str = typer.Argument(..., help="The version the review was made on: PATH[@vNNNN]."),
          review: Path = typer.Argument(..., help="review.json downloaded from report.html."),
          to: Optional[Path] = typer.Option(None, "--to", help="Write into this dataset (default: the same one)."),
          allow_new_labels: bool = typer.Option(False, "--allow-new-labels", help="Accept relabels to labels the "
                                                "dataset does not have yet.")) -> None:
    """Write the next version: rejected items removed, relabels applied and recorded per item."""
    from curate.review import apply_review, read_review
    from curate.store import load_ref, open_dataset

    data, sha256 = read_review(review)
    version = load_ref(ref)
    target = open_dataset(to, create=True) if to else None
    committed, changes = apply_review(version, data, sha256, target, allow_new_labels, str(review))
    console = _console()
    _print_changes(changes, console)
    console.print(f"{committed.ref}: {committed.info['counts']['items']} item(s); review {sha256[:12]} recorded",
                  markup=False)

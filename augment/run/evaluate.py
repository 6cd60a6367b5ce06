"""The evaluation's models: the recipe's `evaluate:` model is trained on the source (before) and on the candidate
(after), and both predict the same items of the scored split (`split`, default dev); curate.checks.evaluation
compares them, paired, per tag. Three kinds, one contract for what they return (curate.predictions):

    evaluate: baseline                         # or {baseline: {model: logreg|knn, features: auto|..., seed: N}}
    evaluate:
      command: python examples/train_sklearn.py --train {train_dir} --dev {dev_dir} --out {predictions}
      timeout_s: 600                           # optional
    evaluate: {python: examples.train_sklearn:predict}

A **command** is split like a shell line (shlex) and run without a shell, in the current directory, once per model.
Its placeholders: {train_dir} and {dev_dir} (folders holding `labels.csv` with id, file, label, tags, group and
the metadata columns, and the media under `media/`, copies the command may not change the dataset through),
{predictions} (the CSV it must write: id,prediction[,p_<label>...]), {workdir} (a scratch folder), {seed} (the
recipe's seed; also in the environment as RUBBERSHEET_SEED). The dev folder holds the split being scored, whatever
its name. Its output (stdout and stderr) goes into the version as evidence (evaluation-before.log,
evaluation-after.log).
A command that exits non-zero, times out or leaves no valid predictions fails the run (exit 2) with its exit code
and last lines; the source is scored before anything is augmented, so a broken command writes nothing.

A **python** function is imported from `package.module` (the current directory is importable) and called as
`function(train, dev, seed=seed)`, where train and dev are pandas DataFrames of the two splits with the columns
above plus `path`, a copy of the media file (so a model that writes into it cannot change the dataset). An
exception, or sys.exit, fails the run like a failing command. It returns the predictions for the dev items: a
DataFrame with id and prediction (and p_<label> columns), or a {id: prediction} mapping.

Either way the predictions must cover every item of the scored split (the pairing needs both models on each).
"""
from __future__ import annotations

import importlib
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from curate.exceptions import BadInput

PLACEHOLDERS = ("train_dir", "dev_dir", "predictions", "workdir", "seed")
TAIL_LINES = 8     # of a failing command's output, in its one-line error
REPORT_LINES = 40  # of each run's output, in the report
LINE_CHARS = 300   # of any one line of the model's output quoted in a message
LOG_CHARS = 1_000_000  # of stdout and of stderr kept in evaluation-*.log


class EvaluationFailed(BadInput):
    """The user's model failed (exit code, timeout, or predictions that break the contract); exit code 2."""


def check_command(text: str) -> str:
    """A command line whose placeholders are known and that writes {predictions}; raises ValueError otherwise."""
    try:
        tokens = shlex.split(text)
        fields = [(name, spec, conversion) for token in tokens
                  for _, name, spec, conversion in string.Formatter().parse(token) if name is not None]
        names = {name for name, _, _ in fields}
    except ValueError as exc:
        raise ValueError(f"not a valid command line ({exc})") from None
    if not tokens:
        raise ValueError("an empty command")
    shaped = [name for name, spec, conversion in fields if spec or conversion]
    if shaped:
        raise ValueError(f"placeholder {{{shaped[0]}}} takes no format or conversion (write {{{shaped[0]}}})")
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: {', '.join('{%s}' % p for p in PLACEHOLDERS)})")
    if "predictions" not in names:
        raise ValueError("the command must write {predictions} (the CSV of id,prediction it produces)")
    return text


class Evaluator:
    """Predictions of the recipe's model trained on the source (computed once, kept for every candidate of a
    sweep) and on each candidate; `compare` gives the paired curate.checks.evaluation.Evaluation."""

    def __init__(self, loaded, source, progress: Callable | None = None):
        self.spec = loaded.recipe.evaluate
        self.seed = loaded.recipe.seed
        self.where = f"{loaded.path}: evaluate"
        self.source, self.progress = source, progress
        self.logs: dict[str, bytes] = {}
        self._before = None
        self._features: str | None = None

    @property
    def model(self) -> str:
        if self.spec.kind == "baseline":
            return self.spec.baseline.model
        if self.spec.kind == "python":
            return self.spec.python
        tokens = [Path(t).name for t in shlex.split(self.spec.command)]  # "python train.py", whatever the paths
        return " ".join(tokens[:2] if len(tokens) > 1 and tokens[0].startswith("python") else tokens[:1])

    def before(self):
        """The source's predictions (the first call computes them; a failing model raises EvaluationFailed)."""
        if self._before is None:
            frame = self.source.manifest
            unsplit = "split" not in frame.columns or all(s is None for s in frame["split"])
            if not (unsplit and self.spec.kind == "baseline"):  # a baseline on unsplit data cross-validates
                _split(self.source, self.spec.split, self.where)
            self._before = self._predict(self.source, "before")
        return self._before

    def rebase(self, source) -> None:
        """The same source, now imported (a media folder read on first use): its predictions stay valid."""
        self.source = source

    def compare(self, candidate, targets: list[str]):
        from curate.checks.evaluation import compare_predictions

        before = self.before()
        after = self._predict(candidate, "after")
        groups = dict(zip(self.source.manifest["id"], self.source.manifest["group"]))
        details: dict[str, Any] = {"kind": self.spec.kind}
        if self.spec.kind == "baseline":
            details |= {"features": self._features, "feature_selection": before.attrs.get("selection")}
        else:
            details[self.spec.kind] = getattr(self.spec, self.spec.kind)
        logs = {role: self.logs.get(f"evaluation-{role}.log") for role in ("before", "after")}
        if any(logs.values()):  # the model's own words, for the report (the whole logs stay with the version)
            details["output"] = {role: _last(log, REPORT_LINES) for role, log in logs.items() if log}
        return compare_predictions(before, after, targets, split=self.spec.split, model=self.model,
                                   seed=self._seed(), resamples=self.spec.resamples, groups=groups,
                                   details=details)

    def _seed(self) -> int:
        baseline = self.spec.baseline
        return baseline.seed if baseline is not None and baseline.seed is not None else self.seed

    def _predict(self, view, role: str):
        if self.spec.kind == "baseline":
            return self._baseline(view, role)
        train, dev = _split(view, "train", self.where), _split(view, self.spec.split, self.where)
        with tempfile.TemporaryDirectory(prefix="rubbersheet-eval-") as scratch:
            if self.spec.kind == "command":
                source = self._run_command(view, role, train, dev, Path(scratch))
            else:
                source = self._call_python(view, role, train, dev, Path(scratch))
            what = f"evaluate.{self.spec.kind} on the {'source' if role == 'before' else 'candidate'}"
            from curate.predictions import read_predictions

            try:
                frame = read_predictions(source, view, where=f"{what}: its predictions")
            except EvaluationFailed:
                raise
            except BadInput as exc:
                raise EvaluationFailed(str(exc)) from None
        missing = sorted(set(dev["id"]) - set(frame["id"]))
        if missing:
            raise EvaluationFailed(f"{what}: predicts {len(dev) - len(missing)} of the {len(dev)} "
                                   f"{self.spec.split} items (missing e.g. {missing[0]!r}); the paired "
                                   "evaluation needs every one")
        return frame[frame["id"].isin(set(dev["id"]))].reset_index(drop=True)

    def _baseline(self, view, role: str):
        from curate.baseline import run_baseline

        options = self.spec.baseline
        if role == "before":
            frame = run_baseline(view, model=options.model, seed=self._seed(), features=options.features,
                                 progress=self.progress)
            self._features = frame.attrs.get("features", options.features)
            return frame
        self.before()  # the features are chosen on the source and kept, so the models differ only in data
        return run_baseline(view, model=options.model, seed=self._seed(), features=self._features, score=False)

    def _run_command(self, view, role: str, train, dev, scratch: Path) -> Path:
        folders = {"train_dir": scratch / "train", "dev_dir": scratch / self.spec.split}
        write_split(view, train, folders["train_dir"])
        write_split(view, dev, folders["dev_dir"])
        values = {**{k: str(v) for k, v in folders.items()}, "predictions": str(scratch / "predictions.csv"),
                  "workdir": str(scratch / "work"), "seed": str(self.seed)}
        (scratch / "work").mkdir()
        argv = [token.format(**values) for token in shlex.split(self.spec.command)]
        what = f"evaluate.command on the {'source' if role == 'before' else 'candidate'} ({view.ref})"
        env = {**os.environ, "RUBBERSHEET_SEED": str(self.seed)}
        started = time.monotonic()
        try:  # its own session, so a timeout stops everything it started, not only the first process
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                       start_new_session=True)
        except FileNotFoundError:
            raise EvaluationFailed(f"{what}: {argv[0]!r} is not a program on PATH") from None
        except OSError as exc:
            raise EvaluationFailed(f"{what}: cannot start {argv[0]!r} ({exc.strerror or exc})") from None
        try:
            stdout, stderr = process.communicate(timeout=self.spec.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            self.logs[f"evaluation-{role}.log"] = _log(argv, stdout, stderr, None, time.monotonic() - started)
            raise EvaluationFailed(f"{what}: did not finish within timeout_s={self.spec.timeout_s:g} s"
                                   f"{_tail(stderr or stdout)}") from None
        done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
        self.logs[f"evaluation-{role}.log"] = _log(argv, done.stdout, done.stderr, done.returncode,
                                                    time.monotonic() - started)
        if done.returncode != 0:
            raise EvaluationFailed(f"{what}: exited {done.returncode}{_tail(done.stderr or done.stdout)}")
        predictions = Path(values["predictions"])
        if not predictions.is_file():
            raise EvaluationFailed(f"{what}: exited 0 but wrote no {{predictions}} file{_tail(done.stderr)}")
        kept = scratch / f"predictions-{role}.csv"
        shutil.copyfile(predictions, kept)
        return kept

    def _call_python(self, view, role: str, train, dev, scratch: Path):
        function = load_function(self.spec.python, self.where)
        what = f"evaluate.python {self.spec.python} on the {'source' if role == 'before' else 'candidate'}"
        copies = {}
        for name, rows in (("train", train), ("dev", dev)):  # copies: the model cannot change the dataset
            copies.update(write_split(view, rows, scratch / name))

        def paths(frame):
            return frame.assign(path=[str(copies[i]) for i in frame["id"]])
        try:
            result = function(paths(train), paths(dev), seed=self.seed)
        except BadInput:
            raise
        except (Exception, SystemExit) as exc:  # the user's code: its failure (even sys.exit(0)) fails the run
            raise EvaluationFailed(f"{what}: raised {type(exc).__name__}: {_short(str(exc))}") from None
        import pandas as pd

        return result.reset_index(drop=True) if isinstance(result, pd.DataFrame) else result


def load_function(target: str, where: str) -> Callable:
    module_name, _, name = target.partition(":")
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # the user's module: a SyntaxError or sys.exit at import is reported
        raise BadInput(f"{where}.python: cannot import {module_name!r} ({type(exc).__name__}: "
                       f"{_short(str(exc))})") from None
    finally:
        if added:
            sys.path.remove(here)
    function = getattr(module, name, None)
    if not callable(function):
        raise BadInput(f"{where}.python: {module_name} has no function {name!r}")
    return function


def _split(view, name: str, where: str):
    frame = view.manifest
    rows = frame[frame["split"] == name]
    if rows.empty:
        raise BadInput(f"{where}: {view.ref} has no {name!r} items; a command or python model needs a train split "
                       f"and the scored split (evaluate.split, default dev)")
    return rows.sort_values("id", kind="stable").reset_index(drop=True)


def write_split(view, rows, folder: Path) -> dict[str, Path]:
    """`folder`/labels.csv (id, file, label, tags, group, metadata) and copies of the media under `folder`/media;
    returns {id: path of its copy}."""
    import csv

    from curate.export import file_name
    from curate.manifest import CORE_COLUMNS

    media = folder / "media"
    media.mkdir(parents=True)
    written: dict[str, Path] = {}
    metadata = [c for c in rows.columns if c not in CORE_COLUMNS]
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "file", "label", "tags", "group", *metadata])
        used: set[str] = set()
        for record in rows.to_dict("records"):
            name = file_name(record["id"], record["ext"])
            while name.lower() in used:
                name = f"_{name}"
            used.add(name.lower())
            shutil.copyfile(view.media_path(record["id"]), media / name)
            written[record["id"]] = media / name
            writer.writerow([record["id"], f"media/{name}", record["label"], ";".join(record["tags"]),
                             record["group"] or "", *["" if record[c] is None else record[c] for c in metadata]])
    return written


def _short(text: str, limit: int = LINE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tail(output: bytes | str | None) -> str:
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else (output or "")
    lines = [_short(line) for line in text.strip().splitlines() if line.strip()][-TAIL_LINES:]
    return f"; last lines: {' | '.join(lines)}" if lines else ""


def _last(log: bytes, lines: int) -> str:
    return "\n".join(_short(line, 500) for line in log.decode("utf-8", "replace").splitlines()[-lines:])


def _log(argv, stdout, stderr, code, seconds: float) -> bytes:
    def text(value):
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")

    def bounded(value) -> str:  # the end of a flood is what explains it
        value = text(value)
        return value if len(value) <= LOG_CHARS else f"[... {len(value) - LOG_CHARS:,} characters cut]\n" + \
            value[-LOG_CHARS:]

    return (f"$ {shlex.join(argv)}\n# exit code: {code if code is not None else 'timed out'}, {seconds:.1f} s\n"
            f"## stdout\n{bounded(stdout)}\n## stderr\n{bounded(stderr)}\n").encode("utf-8")

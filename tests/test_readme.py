"""README.md runs as pasted: every ```python block and every ```bash command line, in README order, in one fresh
working directory (sample_media/, recipes/ and examples/ linked in, as in a clone), through the installed console
scripts and a fresh Python per block.

A block is skipped only when the README marks it, in an HTML comment right above it,
`<!-- readme-test: skip: REASON -->`: it needs the network (pip), a Ray cluster or MLflow, or it is far slower than
what it shows and another test runs it (the reason names that test). The skip reason shows in pytest's report.
`<!-- readme-test: setup: WHAT -->` names a file a person would have made by hand (review.json, from the report
page's Download review); the test makes it, as the page would, before the block runs.
A command line's expected exit code is 0 unless its comment says `exit N` (the tour's refused recipe: exit 1).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT

README = ROOT / "README.md"
LINKED = ("sample_media", "recipes", "examples")   # what a clone has, read-only; everything else is written fresh


@dataclass(frozen=True)
class Block:
    lang: str
    line: int                # line of the opening fence in README.md
    text: str
    skip: str | None         # the README's reason, when it marks the block skipped
    setup: str | None


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
        directives, k = [], i - 1
        while k >= 0 and lines[k].startswith("<!--"):   # the HTML comments right above the fence
            found = re.match(r"<!--\s*readme-test:\s*(skip|setup):\s*(.*?)\s*-->", lines[k])
            if found:
                directives.append((found.group(1), found.group(2)))
            k -= 1
        marks = dict(directives)
        if fence.group(1) in ("python", "bash"):
            blocks.append(Block(fence.group(1), i + 1, "\n".join(lines[i + 1:end]) + "\n", marks.get("skip"),
                                marks.get("setup")))
        i = end + 1
    return blocks


def command_lines(block: Block) -> list[tuple[str, int]]:
    """(command as pasted, expected exit code) per line of a bash block."""
    out = []
    for line in block.text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        comment = line.split("  #", 1)[1] if "  #" in line else ""
        expected = re.search(r"\bexit (\d)\b", comment)
        out.append((line, int(expected.group(1)) if expected else 0))
    return out


BLOCKS = readme_blocks(README.read_text())


def block_id(block: Block) -> str:
    first = next((line for line in block.text.splitlines() if line.strip() and not line.startswith("#")), "")
    return f"L{block.line}-{block.lang}-{re.sub(r'[^A-Za-z0-9_.]+', '_', first)[:40]}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A fresh working directory like a clone's root; `outputs` collects each command line's stdout."""
    work = tmp_path_factory.mktemp("readme")
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return {"path": work, "env": env, "outputs": {}}


def make_review(work: Path) -> None:
    """What report.html's Download review saves: the version's fingerprint and a decision on an augmented item."""
    import curate

    version = curate.open(work / "datasets" / "speech").load("latest")
    item = version.manifest.loc[version.manifest["origin"] == "augmented", "id"].iloc[0]
    (work / "review.json").write_text(json.dumps({
        "schema": "rubbersheet.review", "schema_version": 1, "version": version.ref,
        "fingerprint": version.info["fingerprint"], "decisions": [{"id": item, "decision": "reject",
                                                                   "note": "the noise buries the word"}]}))


SETUP = {"review.json": make_review}


@pytest.mark.parametrize("block", BLOCKS, ids=[block_id(b) for b in BLOCKS])
def test_readme_block_runs_as_pasted(block, workdir):
    if block.skip:
        pytest.skip(f"README.md:{block.line} marked skip: {block.skip}")
    work, env = workdir["path"], workdir["env"]
    if block.setup:
        SETUP[block.setup.split(",")[0].split()[0]](work)
    if block.lang == "python":
        done = subprocess.run([sys.executable, "-"], input=block.text, capture_output=True, text=True, cwd=work,
                              env=env, timeout=600)
        assert done.returncode == 0, f"README.md:{block.line} python block failed:\n{done.stderr[-3000:]}"
        return
    for command, expected in command_lines(block):
        done = subprocess.run(command, shell=True, executable="/bin/bash", capture_output=True, text=True,
                              cwd=work, env=env, timeout=600)
        workdir["outputs"][command] = done.stdout
        assert done.returncode == expected, (f"README.md:{block.line}: `{command}` exited {done.returncode}, "
                                             f"expected {expected}:\n{done.stderr[-3000:]}")
        assert "Traceback" not in done.stderr, done.stderr


def test_every_file_the_readme_names_exists():
    text = README.read_text()
    named = set(re.findall(r"\b((?:examples|recipes|sample_media)/[\w./-]*\w)", text))
    assert {"examples/hlp.csv", "examples/gate.yaml", "recipes/speech_cafe_noise.yaml"} <= named
    missing = sorted(p for p in named if not (ROOT / p).exists() and "*" not in p)
    assert not missing, missing


def test_skips_are_only_for_network_ray_mlflow_or_a_slow_duplicate():
    reasons = [b.skip for b in BLOCKS if b.skip]
    assert reasons and all(re.search(r"network|Ray cluster|MLflow|slow .*tests/test_\w+\.py", r) for r in reasons), \
        reasons
    run = [b for b in BLOCKS if not b.skip]
    assert sum(b.lang == "python" for b in run) >= 3 and sum(b.lang == "bash" for b in run) >= 6


def test_the_tour_prints_the_figures_the_readme_states(workdir):
    """The README's ```text block of evaluation lines is what the tour's targeted step printed."""
    outputs = workdir["outputs"]
    step = "augment run recipes/speech_weak_tags.yaml"
    printed = next((out for command, out in outputs.items() if command.startswith(step)), None)
    if printed is None:
        pytest.fail("the tour block did not run (see its test above)")
    stated = README.read_text().split("The targeted step prints (dev, paired, 50 items):\n\n```text\n")[1]
    stated = stated.split("```")[0].strip().splitlines()
    assert len(stated) == 6
    for line in stated:
        assert line in printed, line


def test_the_tours_weak_tags_step_targets_the_top_two_tags(workdir):
    """The tour as pasted: the error analysis ranks clean and low_bandwidth first, speech_weak_tags targets them
    with 120 items, every dev tag is evaluated on its own, and nothing drops."""
    import curate

    work = workdir["path"]
    if not (work / "datasets" / "errors.json").is_file():
        pytest.fail("the tour block did not run (see its test above)")
    ds = curate.open(work / "datasets" / "speech")
    info = ds.load("v0003").info
    assert info["recipe"]["name"] == "speech_weak_tags"
    chosen = [t["tag"] for t in json.loads((work / "datasets" / "errors.json").read_text())["tags"][:2]]
    assert chosen == ["clean", "low_bandwidth"] and list(info["source"]["targets"]) == chosen
    assert sum(info["source"]["targets"].values()) == 120
    evaluation = info["evaluation"]
    rows = {r["tag"]: r for r in evaluation["tags"]}
    dev = ds.load("v0001").manifest
    dev_tags = {t for tags in dev[dev["split"] == "dev"]["tags"] for t in tags}
    assert evaluation["split"] == "dev" and set(rows) == dev_tags | {"all"}  # every dev tag on its own, no pool
    assert all(rows[t]["targeted"] for t in chosen) and not any(rows[t]["targeted"] for t in dev_tags - set(chosen))
    for r in rows.values():
        assert 0 <= r["before"] <= 1 and 0 <= r["after"] <= 1 and 0 <= r["mcnemar_p"] <= 1
        assert r["low"] <= r["difference"] <= r["high"] and r["difference"] == pytest.approx(r["after"] - r["before"])
    assert rows["all"]["n"] == 50 and evaluation["details"]["features"] == "logmel_stats"
    low = rows["low_bandwidth"]
    assert (low["before"], low["after"], low["n"]) == (0.28, 0.48, 25) and low["low"] > 0
    assert all(r["difference"] >= 0 for r in rows.values())
    frame = ds.load("v0003").manifest  # tag bookkeeping: a telephone copy of wideband speech
    made = frame[frame["id"].str.startswith("augmented/speech_weak_tags/low_bandwidth/")]
    assert len(made) == 60 and all("low_bandwidth" in t for t in made["tags"])

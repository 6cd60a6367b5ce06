"""The Ray executor gives the same results as the local pool (a local Ray instance, started and stopped here)."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

import curate
import curate.verify

from test_runner import corrupt_a_source, recipe_file

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None and not os.environ.get("CI"),
                               reason="needs the ray extra (.ci/run installs it; CI never skips)")


@needs_ray
def test_ray_and_the_local_pool_give_the_same_fingerprint(speech_dataset, tmp_path, augment_cli):
    recipe = recipe_file(tmp_path, speech_dataset, budget=12)
    assert augment_cli("run", recipe, "--out", tmp_path / "local", "--workers", 2)[0] == 0
    code, out, err = augment_cli("run", recipe, "--out", tmp_path / "ray", "--executor", "ray")
    assert code == 0, err
    local, ray_version = curate.open(tmp_path / "local").load(), curate.open(tmp_path / "ray").load()
    assert ray_version.info["fingerprint"] == local.info["fingerprint"]
    assert curate.verify.verify(curate.open(tmp_path / "ray"))[0] == []


@needs_ray
def test_a_corrupt_source_fails_the_ray_run_with_its_id(speech_copy, tmp_path, augment_cli):
    victim = corrupt_a_source(speech_copy, 3)
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=200), "--executor", "ray")
    assert code == 2 and f"(source {victim!r}) failed" in err and "no version written" in err
    assert curate.open(speech_copy).versions() == ["v0001"]
    assert not list((speech_copy / "objects").glob("*/.tmp-*")) and not list((speech_copy / "objects").glob(".probe-*"))


def test_without_ray_the_executor_says_how_to_install_it(speech_dataset, tmp_path, augment_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset), "--executor", "ray")
    assert code == 2 and "pip install 'rubbersheet[ray]'" in err
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset), "--executor", "spark")
    assert code == 2 and "--executor: 'spark' is not one of local, ray" in err


def test_importing_the_runner_does_not_import_ray():
    import subprocess

    code = "import sys, augment.run, augment.run.execute, augment.cli; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

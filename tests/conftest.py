"""Shared fixtures: the real sample media, datasets imported from it, and an in-process CLI runner."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MEDIA = ROOT / "sample_media"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def curate_cli(capsys):
    """Run `curate ARGS...` in-process through the same entry point as the console script."""
    from curate.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def augment_cli(capsys, monkeypatch):
    """Run `augment ARGS...` in-process from the repository root (recipes name sample_media relative to it);
    returns (exit code, stdout, stderr)."""
    from augment.cli import main

    monkeypatch.chdir(ROOT)

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def speech_dataset(tmp_path_factory) -> Path:
    """sample_media/speech imported once (read-only for tests; copy it before writing)."""
    from curate.importer import import_folder

    path = tmp_path_factory.mktemp("speech") / "ds"
    import_folder(SAMPLE_MEDIA / "speech", path)
    return path


@pytest.fixture
def speech_copy(speech_dataset, tmp_path) -> Path:
    """A private, writable copy of the imported speech dataset."""
    target = tmp_path / "ds"
    shutil.copytree(speech_dataset, target)
    for p in target.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    return target


@pytest.fixture
def media_folder(tmp_path) -> Path:
    """A small writable source folder: three real clips and two real images from sample_media."""
    src = tmp_path / "src"
    (src / "audio").mkdir(parents=True)
    (src / "img").mkdir()
    for name in ("zero", "one", "two"):
        shutil.copyfile(SAMPLE_MEDIA / "speech" / "flite_awb" / f"{name}.wav", src / "audio" / f"{name}.wav")
    for name in ("wood_00", "wood_01"):
        shutil.copyfile(SAMPLE_MEDIA / "inspection" / "wood" / f"{name}.png", src / "img" / f"{name}.png")
    (src / "labels.csv").write_text(
        "path,label,tags,split,group,annotations,snr\n"
        "audio/zero.wav,zero,clean;tts,train,awb,zero;zero,10\n"
        "audio/one.wav,one,clean,dev,awb,one;won,12\n"
        "audio/two.wav,two,,test,awb,,\n"
        "img/wood_00.png,ok,wood,train,,ok,3.5\n"
        "img/wood_01.png,defect,wood;scratch,,,defect;ok,\n"
    )
    return src


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 (tests/s3_server.py) with one bucket; fsspec/s3fs and subprocesses point at it
    through the environment. Started once per session, stopped at its end."""
    from s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3-cache")).start()
    yield server
    server.stop()

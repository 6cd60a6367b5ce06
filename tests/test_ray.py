"""The Ray executor on a real two-node cluster on this host: a head and a second raylet (`ray start`, 1 CPU each,
token authentication disabled explicitly with RAY_AUTH_MODE=disabled, every port chosen free, both stopped at the
end, even on failure, by killing their own process groups). It must give the local pool's fingerprint and objects
with shared storage, without it, and with a worker killed mid-run.

Without shared storage, on one host: each raylet runs with RUBBERSHEET_RAY_TEST_UNSEEN naming a file of path
prefixes its workers treat as absent (augment.run.cluster honours it in the per-node probe and in the checks before
a worker reads a source or a bed in place). Hiding the dataset and the noise beds from a node makes the probe fail
honestly there, and the run must then ship sources and beds through Ray's object store; tasks shipped that way
carry no readable path of the driver's (only file:// names for messages), so a worker that tried to read the
driver's files anyway would fail. A second working directory would not do: tasks carry absolute paths, which every
process on this host can read.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import curate
import curate.verify

from conftest import ROOT, SAMPLE_MEDIA
from test_runner import NOISE_RECIPE, corrupt_a_source, recipe_file

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None and not os.environ.get("CI"),
                               reason="needs the ray extra (.ci/run installs it; CI never skips)")
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1"}


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def session_pids(sessions: set[int]) -> list[int]:
    """Live processes of these sessions: a `ray start` and everything Ray started under it, workers included
    (they take their own process group, not their own session). Never another person's Ray."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) in sessions:
                found.append(int(entry.name))
    return found


class Node:
    """One `ray start --block` in a session of its own (start_new_session), stopped by signalling that session."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen([*RAY, "start", "--block", "--disable-usage-stats", *args], env=env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.session = self.process.pid

    def wait_started(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "Ray runtime started" in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"ray start failed:\n{self.log.read_text(errors='replace')[-3000:]}")


def stop_sessions(sessions: set[int]) -> None:
    """SIGKILL every process of these sessions (a test cluster has nothing to drain) and wait until none is left."""
    end = time.monotonic() + 10
    while (left := session_pids(sessions)) and time.monotonic() < end:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def node_args(ports: list[int]) -> list[str]:
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
    return [f"{name}={port}" for name, port in zip(names, ports)]


class Cluster:
    """A head and (`second`) a second raylet, 1 CPU each; `start()` returns once the head's GCS answers (the
    second raylet joins it then), `wait()` once every node has started. `hide(node, *paths)`: what that node's
    workers cannot see (its raylet runs with RUBBERSHEET_RAY_TEST_UNSEEN naming a file of prefixes)."""

    def __init__(self, root: Path, auth: dict[str, str] | None = None, second: bool = True):
        self.root, self.second = root, second
        self.temp = Path(tempfile.mkdtemp(prefix="rsray-", dir="/tmp"))   # short: Ray's socket paths must fit
        self.port, self.dashboard, *self.ports = free_ports(2 + 12)
        self.address = f"127.0.0.1:{self.port}"
        self.unseen = {"head": root / "unseen-head.txt", "second": root / "unseen-second.txt"}
        for f in self.unseen.values():
            f.write_text("")
        self.env = {**os.environ, **QUIET, **(auth or {"RAY_AUTH_MODE": "disabled"})}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: list[Node] = []

    def start(self) -> "Cluster":
        try:
            self.nodes.append(Node(["--head", f"--port={self.port}", "--num-cpus=1", f"--temp-dir={self.temp}",
                                    "--include-dashboard=false", f"--dashboard-port={self.dashboard}",
                                    *node_args(self.ports[:6])],
                                   {**self.env, "RUBBERSHEET_RAY_TEST_UNSEEN": str(self.unseen["head"])},
                                   self.root / "head.log"))
            end = time.monotonic() + 90
            while True:   # the GCS listens well before the head has started its other processes
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    break
                if time.monotonic() > end or self.nodes[0].process.poll() is not None:
                    self.nodes[0].wait_started(timeout=0)   # raises with the log
                time.sleep(0.1)
            if self.second:
                self.nodes.append(Node([f"--address={self.address}", "--num-cpus=1", *node_args(self.ports[6:])],
                                       {**self.env, "RUBBERSHEET_RAY_TEST_UNSEEN": str(self.unseen["second"])},
                                       self.root / "second.log"))
        except BaseException:
            self.stop()
            raise
        return self

    def wait(self) -> "Cluster":
        try:
            for node in self.nodes:
                node.wait_started()
        except BaseException:
            self.stop()
            raise
        return self

    def hide(self, node: str, *paths: Path) -> None:
        self.unseen[node].write_text("".join(f"{p}\n" for p in paths))

    def show_all(self) -> None:
        for f in self.unseen.values():
            f.write_text("")

    def worker_pids(self, title: str) -> list[int]:
        """Ray worker processes of this cluster (never another's) whose title starts with `title`."""
        found = []
        for pid in session_pids({n.session for n in self.nodes}):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title.encode()):
                    found.append(pid)
            except OSError:
                continue
        return found

    def stop(self) -> None:
        stop_sessions({n.session for n in self.nodes})
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=5)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def clusters(tmp_path_factory, s3):
    """The two-node test cluster (auth disabled) and a one-node cluster with token authentication, started side by
    side and stopped at the end whatever happens. The nodes start with the test S3 server's endpoint and
    credentials in their environment (the `s3` fixture), as real nodes are configured for their object store."""
    token = uuid.uuid4().hex * 2
    main = Cluster(tmp_path_factory.mktemp("ray-cluster"))
    guarded = Cluster(tmp_path_factory.mktemp("ray-token"), auth={"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
                      second=False)
    try:
        main.start()
        guarded.start()
        yield main.wait(), guarded.wait()
    finally:
        main.stop()
        guarded.stop()


@pytest.fixture
def cluster(clusters):
    return clusters[0]


@pytest.fixture
def ray_env(monkeypatch, cluster):
    """The driver's side: auth disabled like the cluster's, every node seeing everything unless a test hides."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RUBBERSHEET_RAY_STORAGE", raising=False)
    cluster.show_all()
    yield cluster
    cluster.show_all()


FAST_RECIPE = NOISE_RECIPE + "curation: {{checks: [consistency]}}\n"   # the items are the point here, not the gate


def candidate(recipe: Path, out: Path, executor, rows_out: list | None = None) -> tuple[str, set[str]]:
    """The spine up to the candidate (plan -> join the cluster -> import -> execute), without the gate and the
    report: the fingerprint the version would get, and the objects made (the new rows go into `rows_out`)."""
    from augment.recipe import load_recipe
    from augment.run import connected, materialise, open_source
    from augment.run.execute import execute
    from augment.run.plan import candidate_manifest, make_plan
    from curate.manifest import fingerprint
    from curate.view import MemoryView

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        loaded = load_recipe(recipe)
        source = open_source(loaded.recipe, str(out))
        plan = make_plan(loaded, source.start)
        with connected(executor):
            dataset, source = materialise(source)
            with dataset.lock():
                rows = execute(plan, loaded, source.start, dataset, executor)
    finally:
        os.chdir(cwd)
    if rows_out is not None:
        rows_out.extend(rows.to_dict("records"))
    view = MemoryView(dataset, candidate_manifest(source.start.manifest, plan, rows), name="candidate")
    return fingerprint(view.manifest), set(rows["object"])


@pytest.fixture(scope="module")
def reference(speech_dataset, tmp_path_factory):
    """(recipe, the local pool's candidate fingerprint and objects), budget 24: two chunks, one for each node."""
    from augment.run.execute import LocalExecutor

    root = tmp_path_factory.mktemp("local-pool")
    recipe = recipe_file(root, speech_dataset, budget=24, text=FAST_RECIPE)
    return (recipe, *candidate(recipe, root / "local", LocalExecutor(2)))


@needs_ray
def test_two_nodes_give_the_local_pools_items_with_and_without_shared_storage(ray_env, reference, tmp_path):
    from augment.run.cluster import RayExecutor

    recipe, fingerprint, made = reference
    executor = RayExecutor(ray_env.address)
    assert candidate(recipe, tmp_path / "shared", executor) == (fingerprint, made)
    assert executor.shared is True and len(executor.nodes) == 2
    assert curate.verify.verify(curate.open(tmp_path / "shared"), quick=True)[0] == []

    # one node does not see the dataset and the noise beds: every node gets the bytes from the driver
    ray_env.hide("second", tmp_path, SAMPLE_MEDIA)
    executor = RayExecutor(ray_env.address)
    assert candidate(recipe, tmp_path / "one-blind", executor) == (fingerprint, made)
    assert executor.shared is False

    # no node sees them: whatever a worker reads came through Ray's object store
    ray_env.hide("head", tmp_path, SAMPLE_MEDIA)
    executor = RayExecutor(ray_env.address)
    assert candidate(recipe, tmp_path / "copied", executor) == (fingerprint, made)
    assert executor.shared is False and len(executor.nodes) == 2
    assert not list((tmp_path / "copied" / "objects").glob(".probe-*"))


@needs_ray
def test_a_dataset_on_object_storage_gives_the_local_pools_items_on_two_nodes(ray_env, reference, s3, tmp_path):
    """The source dataset in the bucket (moto's server): with every node reaching the bucket and the beds, workers
    read the sources from the bucket and write the new objects to it; with the beds hidden from a node, the
    driver fetches and ships the sources and writes what comes back. Both give the local pool's fingerprint and
    objects, and the bucket then holds every object made."""
    from augment.run.cluster import RayExecutor
    from curate.importer import import_folder

    _, fingerprint, made = reference
    url = s3.url("speech")
    import_folder(SAMPLE_MEDIA / "speech", url)
    recipe = recipe_file(tmp_path, url, budget=24, text=FAST_RECIPE)
    executor = RayExecutor(ray_env.address)
    assert candidate(recipe, url, executor) == (fingerprint, made)
    assert executor.shared is True and len(executor.nodes) == 2
    assert made <= stored_digests(url)

    url = s3.url("speech")
    import_folder(SAMPLE_MEDIA / "speech", url)
    recipe = recipe_file(tmp_path, url, budget=24, text=FAST_RECIPE, name="copied.yaml")
    ray_env.hide("second", SAMPLE_MEDIA)
    executor = RayExecutor(ray_env.address)
    assert candidate(recipe, url, executor) == (fingerprint, made)
    assert executor.shared is False
    assert made <= stored_digests(url)
    assert not [e.key for e in curate.open(url).remote.list("objects") if "/.probe-" in e.key]


def stored_digests(url: str) -> set[str]:
    return {name.rsplit("/", 1)[1].split(".")[0] for name in curate.open(url).stored_objects()}


@needs_ray
def test_a_worker_killed_mid_run_is_retried_with_the_same_result(ray_env, reference, tmp_path):
    """One worker is killed (SIGKILL) while it makes a chunk; Ray retries the chunk elsewhere."""
    from augment.run.cluster import RayExecutor

    recipe, fingerprint, made = reference
    killed: list[int] = []
    done = threading.Event()

    def kill_first_worker():
        while not done.is_set() and not killed:
            for pid in ray_env.worker_pids("ray::run_chunk"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    try:
        result = candidate(recipe, tmp_path / "killed", RayExecutor(ray_env.address))
    finally:
        done.set()
        killer.join()
    assert killed, "no worker was running a chunk to kill"
    assert result == (fingerprint, made)
    assert curate.verify.verify(curate.open(tmp_path / "killed"), quick=True)[0] == []
    assert not list((tmp_path / "killed" / "objects").glob("*/.tmp-*"))


@needs_ray
def test_a_worker_that_cannot_read_an_input_says_so(ray_env, speech_copy, tmp_path, augment_cli, monkeypatch):
    """Told the storage is shared while no node sees the dataset: one line naming the node and the file, not a
    media error. Piped (as in CI), the plan line comes first, then plain progress lines (every 0.05 s here)."""
    monkeypatch.setenv("RUBBERSHEET_RAY_STORAGE", "shared")
    monkeypatch.setenv("RUBBERSHEET_PROGRESS_S", "0.05")
    ray_env.hide("head", speech_copy)
    ray_env.hide("second", speech_copy)
    code, out, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=12, text=FAST_RECIPE),
                                 "--executor", "ray", "--ray-address", ray_env.address)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot read file:///" in err and f"{speech_copy}/objects/" in err and "worker on " in err
    assert "not a readable audio file" not in err and "Traceback" not in err
    assert curate.open(speech_copy).versions() == ["v0001"]
    lines = out.splitlines()
    assert lines[0].startswith("plan cafe_noise: ") and lines[1].startswith("progress: "), out[:2000]


@needs_ray
def test_a_corrupt_source_fails_the_ray_run_with_its_id(ray_env, speech_copy, tmp_path, augment_cli):
    victim = corrupt_a_source(speech_copy, 3)
    recipe = recipe_file(tmp_path, speech_copy, budget=200, text=FAST_RECIPE)
    code, _, err = augment_cli("run", recipe, "--executor", "ray", "--ray-address", ray_env.address)
    assert code == 2 and f"(source {victim!r}) failed" in err and "no version written" in err
    assert "not a readable audio file" in err   # a media error stays a media error
    assert curate.open(speech_copy).versions() == ["v0001"]
    assert not list((speech_copy / "objects").glob("*/.tmp-*")) and not list((speech_copy / "objects").glob(".probe-*"))


@needs_ray
def test_workers_running_other_code_refuse(ray_env, speech_copy, tmp_path, augment_cli, monkeypatch):
    import augment.run.cluster as cluster_module

    monkeypatch.setattr(cluster_module, "code_identity", lambda *roots: ("0.0.0", "0123456789abcdef"))  # driver only
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_copy, budget=12, text=FAST_RECIPE), "--executor", "ray",
                               "--ray-address", ray_env.address)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "worker on " in err and "the driver 0.0.0 (source 0123456789abcdef)" in err
    assert curate.open(speech_copy).versions() == ["v0001"]


@needs_ray
def test_connection_failures_are_one_line_and_nothing_is_written(tmp_path, augment_cli, monkeypatch):
    """Nothing listens at the address: one line at once, and the first-use import is not written."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    recipe = first_use_recipe(tmp_path)
    started = time.monotonic()
    code, _, err = augment_cli("run", recipe, "--executor", "ray", "--ray-address", f"127.0.0.1:{free_ports(1)[0]}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no Ray cluster answers there" in err, err
    assert time.monotonic() - started < 15
    assert not (tmp_path / "out").exists()


@needs_ray
def test_a_bad_storage_setting_is_refused_before_anything_is_written(tmp_path, augment_cli, monkeypatch):
    monkeypatch.setenv("RUBBERSHEET_RAY_STORAGE", "nfs")
    code, _, err = augment_cli("run", first_use_recipe(tmp_path), "--executor", "ray", "--ray-address", "auto")
    assert code == 2 and "RUBBERSHEET_RAY_STORAGE='nfs': expected auto, shared or copy" in err, err
    assert not (tmp_path / "out").exists()


def first_use_recipe(tmp_path: Path) -> Path:
    """A recipe whose dataset is a media folder not imported yet (the run would import it into tmp/out)."""
    text = (recipe_file(tmp_path, SAMPLE_MEDIA / "speech", budget=6).read_text()
            .replace("name: test_noise", f"name: test_noise\noutput: {tmp_path / 'out'}"))
    path = tmp_path / "first_use.yaml"
    path.write_text(text)
    return path


@needs_ray
def test_token_authentication_failures_name_the_cause(clusters, tmp_path):
    """A head started with token authentication (as Ray 2.60 does by default once a token exists): a driver
    without the token, or with another one, gets one line naming the cause at once, and the import is not
    written. Fresh processes: Ray reads RAY_AUTH_MODE once per process."""
    guarded = clusters[1]
    recipe = first_use_recipe(tmp_path)
    exe = Path(sys.executable).parent / "augment"
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    cases = [({}, "requires token authentication and this process sends no token"),
             ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}, "refused this process's authentication token "
                                                                      "(token mismatch)")]
    started = time.monotonic()
    runs = [subprocess.Popen([str(exe), "run", str(recipe), "--executor", "ray", "--ray-address", guarded.address],
                             cwd=ROOT, env={**base, **QUIET, **extra}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for extra, _ in cases]
    for run, (_, expected) in zip(runs, cases):
        _, err = run.communicate(timeout=120)
        assert run.returncode == 2 and expected in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert time.monotonic() - started < 20 and not (tmp_path / "out").exists()


def test_without_ray_the_executor_says_how_to_install_it(speech_dataset, tmp_path, augment_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset), "--executor", "ray")
    assert code == 2 and "pip install 'rubbersheet[ray]'" in err
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset), "--executor", "spark")
    assert code == 2 and "--executor: 'spark' is not one of local, ray" in err


def test_importing_the_runner_does_not_import_ray():
    code = ("import sys, augment.run, augment.run.execute, augment.run.cluster, augment.cli; "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_without_a_terminal_long_work_prints_a_progress_line_at_least_every_interval():
    import io

    from rich.console import Console

    from augment.cli import Heartbeat

    text = io.StringIO()
    console = Console(file=text, width=10_000)

    def slow(n):
        for i in range(n):
            time.sleep(0.02)
            yield i

    with Heartbeat(console, interval=0.05) as beat:
        list(beat(slow(5), "before the plan"))
        assert text.getvalue() == ""          # nothing before start(): the plan line comes first
        beat.start()
        assert list(beat(slow(20), "augment demo", total=20)) == list(range(20))
        time.sleep(0.12)                      # between steps: a line all the same
    lines = text.getvalue().splitlines()
    assert any(line.startswith("progress: augment demo: ") and "/20 items" in line for line in lines), lines
    assert any(line.startswith("progress: augment demo: 20/20 done in ") for line in lines), lines
    assert lines[-1].startswith("progress: working, ") and "(last step: augment demo (20/20))" in lines[-1], lines
    with Heartbeat(console, interval=0.05, enabled=False) as quiet:   # on a terminal Rich draws a bar instead
        quiet.start()
        list(quiet(slow(10), "x"))
    assert text.getvalue().splitlines() == lines


def test_a_bad_progress_interval_is_refused_before_anything_is_written(speech_dataset, tmp_path, augment_cli,
                                                                        monkeypatch):
    monkeypatch.setenv("RUBBERSHEET_PROGRESS_S", "soon")
    code, _, err = augment_cli("run", recipe_file(tmp_path, speech_dataset, budget=12), "--out", tmp_path / "out")
    assert code == 2 and "RUBBERSHEET_PROGRESS_S='soon': expected a number of seconds" in err
    assert not (tmp_path / "out").exists()

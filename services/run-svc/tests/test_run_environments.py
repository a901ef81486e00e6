"""Runs' Python environments on the local executor: built once per digest with uv (in this process
and across processes), never half-built after a kill -9, refused naming the requirement that does
not resolve; a run in one has that environment's interpreter and packages, the SDK, and none of
Shipyard's own packages. Every package comes from the test wheelhouse, offline."""

from __future__ import annotations

import asyncio
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from shipyard_run.adapters.batch_jobs import run_script
from shipyard_run.adapters.environments import MARKER, LocalEnvironments, PackageSources
from shipyard_run.adapters.local import LocalExecutor
from shipyard_run.adapters.sandbox import OWN, View, plan
from shipyard_run.app.ports import EnvironmentFailed, Job, JobEnvironment, JobState

from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.bubblewrap import Bubblewrap
from shipyard.kit.environments import environment_digest

# The test wheelhouse (tools/install-test-deps.sh fills it) and the session's environments folder: the
# same as the stacks' (shipyard.local.harness.environment_settings), which services' tests may not import.
WHEELHOUSE = Path(__file__).resolve().parents[3] / ".venv" / "wheelhouse"
OFFLINE = PackageSources(find_links=str(WHEELHOUSE), offline=True)
SKLEARN_13 = ("scikit-learn==1.3.*", "numpy<2", "scipy", "pandas", "matplotlib", "joblib")
RUN_ID = "0123456789abcdef0123456789abcdef"
INSTALL = "$ "  # how the build log starts each command it runs
# A child process that builds one environment (argv: wheelhouse, root, image, requirements…), as a
# run-svc would.
BUILDER = """
import asyncio, sys
from pathlib import Path
from shipyard.kit.environments import environment_digest
from shipyard_run.adapters.environments import LocalEnvironments, PackageSources
from shipyard_run.app.ports import JobEnvironment
wheelhouse, root, image, *requirements = sys.argv[1:]
environments = LocalEnvironments(Path(root), PackageSources(find_links=wheelhouse, offline=True))
environment = JobEnvironment(image, "", tuple(requirements), environment_digest("", requirements))
asyncio.run(environments.build(environment))
"""


def _environment(image: str, requirements: Sequence[str], python: str = "") -> JobEnvironment:
    return JobEnvironment(image, python, tuple(requirements), environment_digest(python, requirements))


def _installs(environments: LocalEnvironments, environment: JobEnvironment) -> int:
    """How many times uv installed ``environment``'s requirements (its build log says)."""
    log = environments.log_path(environment.digest).read_text()
    return sum(1 for line in log.splitlines() if line.startswith(f"== {INSTALL}") and " pip install " in line)


def _forget_bytecode(marker: Path) -> None:
    """Make ``marker`` say the bytecode is still to compile, as a run-svc killed while compiling leaves it."""
    marker.write_text(marker.read_text().replace('"bytecode": true', '"bytecode": false'))


def _builder(root: Path, environment: JobEnvironment) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BUILDER, str(WHEELHOUSE), str(root), environment.image,
                             *environment.requirements], stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> LocalEnvironments:
    """The test session's environments (built once per session, as the stacks' are)."""
    return LocalEnvironments(tmp_path_factory.getbasetemp() / "environments", OFFLINE)


async def test_two_builds_of_one_environment_at_once_install_it_once(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    environment = _environment("joblib", ["joblib"])
    assert not await environments.ready(environment)

    first, second = await asyncio.gather(environments.build(environment), environments.build(environment))

    assert first == second and await environments.ready(environment)
    assert _installs(environments, environment) == 1
    assert any(p.startswith("joblib==") for p in first.packages)


async def test_two_processes_racing_on_one_folder_install_it_once(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    environment = _environment("joblib", ["joblib"])

    racers = [_builder(environments.root, environment) for _ in range(2)]
    outcomes = [racer.communicate(timeout=120) for racer in racers]

    assert [racer.returncode for racer in racers] == [0, 0], outcomes
    assert _installs(environments, environment) == 1 and await environments.ready(environment)


async def test_a_second_environment_borrows_the_bytecode_of_the_same_files(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    first = await environments.build(_environment("joblib", ["joblib"]))
    await environments.compiled()
    second = await environments.build(_environment("joblib-and-more", ["joblib", "threadpoolctl"]))

    tag = sys.implementation.cache_tag
    compiled = [Path(built.path, "lib", f"python{built.python}", "site-packages", "joblib", "__pycache__",
                     f"parallel.{tag}.pyc") for built in (first, second)]
    assert compiled[0].stat().st_ino == compiled[1].stat().st_ino  # one file, hard-linked
    script = "import joblib.parallel as p; print(p.__cached__, p.Parallel.__init__.__code__.co_filename)"
    probe = await asyncio.create_subprocess_exec(f"{second.bin}/python", "-c", script, stdout=subprocess.PIPE)
    said = (await asyncio.wait_for(probe.communicate(), 60))[0].decode()
    # It loads the borrowed bytecode, and its code names its own file, not the first environment's.
    assert said.split() == [str(compiled[1]), str(Path(second.path, "lib", f"python{second.python}",
                                                        "site-packages", "joblib", "parallel.py"))]


async def test_a_first_environment_is_ready_before_its_bytecode_which_follows(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    environment = _environment("pandas", ["pandas"])
    tag = sys.implementation.cache_tag

    built = await environments.build(environment)

    assert not built.bytecode  # ready: runs may start; their imports compile in memory meanwhile
    await environments.compiled()
    done = environments.built(environment.digest)
    compiled = built.site / "pandas" / "core" / "__pycache__" / f"frame.{tag}.pyc"
    assert done is not None and done.bytecode and compiled.exists()

    # A run-svc killed while compiling left some out: the next build compiles them.
    compiled.unlink()
    _forget_bytecode(Path(built.path, MARKER))
    await environments.build(environment)
    await environments.compiled()
    again = environments.built(environment.digest)
    assert compiled.exists() and again is not None and again.bytecode


async def test_a_build_killed_midway_leaves_nothing_used_and_the_next_build_succeeds(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    environment = _environment("pandas", ["pandas"])
    builder = _builder(environments.root, environment)
    target = environments.path(environment.digest)
    try:
        deadline = time.monotonic() + 60
        while not ((target / "bin").is_dir() and not (target / MARKER).exists()):
            assert time.monotonic() < deadline, "the build did not get under way"
            await asyncio.sleep(0.01)
    finally:
        builder.send_signal(signal.SIGKILL)
        builder.wait()

    assert not await environments.ready(environment)  # what it left is never used
    built = await environments.build(environment)

    assert await environments.ready(environment) and any(p.startswith("pandas==") for p in built.packages)
    assert environments.log_path(environment.digest).read_text().count("== building environment") == 2
    done = await asyncio.create_subprocess_exec(f"{built.bin}/python", "-c", "import pandas")
    assert await asyncio.wait_for(done.wait(), 60) == 0


async def test_a_requirement_that_does_not_resolve_fails_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    environment = _environment("typo", ["joblib", "scikit-lern==1.5.*"])

    with pytest.raises(EnvironmentFailed) as failed:
        await environments.build(environment)

    assert "scikit-lern" in str(failed.value) and "typo" in str(failed.value)
    assert not environments.path(environment.digest).exists() and not await environments.ready(environment)
    assert "scikit-lern" in environments.log_path(environment.digest).read_text()  # the log is kept


async def test_no_such_version_fails_naming_the_requirement(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    with pytest.raises(EnvironmentFailed, match=r"pandas==0\.0\.1"):
        await environments.build(_environment("old", ["pandas==0.0.1"]))


async def test_a_python_this_machine_lacks_fails_saying_so(tmp_path: Path) -> None:
    environments = LocalEnvironments(tmp_path / "environments", OFFLINE)
    environment = _environment("future", [], python="3.99")
    with pytest.raises(EnvironmentFailed, match=r"Python 3\.99 is not installed on this machine"):
        await environments.build(environment)
    assert not environments.path(environment.digest).exists()


async def test_an_index_that_does_not_answer_fails_without_showing_its_credentials(tmp_path: Path) -> None:
    index = "http://alice:s3cret@127.0.0.1:9/simple"  # nothing listens on the discard port
    environments = LocalEnvironments(tmp_path / "environments", PackageSources(index_url=index))
    environment = _environment("private", ["joblib"])

    with pytest.raises(EnvironmentFailed) as failed:
        await environments.build(environment)

    assert "127.0.0.1:9" in str(failed.value) and "s3cret" not in str(failed.value)
    assert "s3cret" not in environments.log_path(environment.digest).read_text()


def test_package_sources_become_uvs_options_and_the_index_a_variable_never_an_option() -> None:
    assert PackageSources().options() == [] and PackageSources().index_variables("UV_DEFAULT_INDEX") == {}
    private = PackageSources("https://alice:s3cret@pypi.example.org/simple", "/wheels")
    assert private.options() == ["--find-links", "/wheels"]  # a command line every local user can read
    assert private.index_variables("UV_DEFAULT_INDEX") == {
        "UV_DEFAULT_INDEX": "https://alice:s3cret@pypi.example.org/simple"}
    offline = PackageSources("https://pypi.example.org/simple", "/wheels", offline=True)
    assert offline.options() == ["--find-links", "/wheels", "--offline", "--no-index"]
    assert offline.index_variables("UV_DEFAULT_INDEX") == {}


def test_a_cluster_build_names_a_private_index_in_pips_variable_never_its_options() -> None:
    index = "https://alice:s3cret@pypi.example.org/simple"
    job = Job("r1", "t1", "python train.py", environment=JobEnvironment("sk", "3.11", ("joblib",), "d" * 64))
    script = run_script(job, "/w/runs/r1", "/w", PackageSources(index_url=index))
    install = next(line for line in script.splitlines() if "pip install" in line)
    assert f"PIP_INDEX_URL={index} /w/environments/" in install  # the shell's variable, never pip's argv
    assert "--index-url" not in script and script.count("s3cret") == 1


def test_the_sandbox_shows_an_environments_hidden_directories_empty_and_read_only() -> None:
    view = View((), f"{OWN}/code", "/data/tmp")
    args = plan(view, Bubblewrap("/usr/bin/bwrap", None), ("/opt/python", "/data/environments/abc"),
                hidden=("/opt/python/lib/python3.11/site-packages",))

    hidden = "/opt/python/lib/python3.11/site-packages"
    at = args.index(hidden)
    assert args[at - 1] == "--tmpfs" and args[at + 1:at + 3] == ["--remount-ro", hidden]
    assert at > args.index("/opt/python")  # over the interpreter's bind, not under it


async def _executor(tmp_path: Path, environments: LocalEnvironments,
                    isolation: str | None = None) -> LocalExecutor:
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.open()
    executor = LocalExecutor(tmp_path / "workspaces", blobs, gpus=0, isolation=isolation,
                             environments=environments)
    if isolation is None and executor.isolation_missing():
        pytest.skip(f"runs cannot be isolated here: {executor.isolation_missing()}")
    return executor


async def _run(executor: LocalExecutor, command: str, environment: JobEnvironment,
               ) -> tuple[int, str, tuple[str, ...]]:
    """Run ``command`` in ``environment`` with an output at /model; exit code, log, notes."""
    if not await executor.environment_ready(environment):
        await executor.build_environment(environment)
    job = Job(run_id=RUN_ID, name="probe", command=command, inputs=(), output_paths=("/model",),
              hyperparameters={}, environment=environment)
    notes = await executor.submit(job)
    for _ in range(2400):
        status = await executor.status(RUN_ID)
        if status.state is JobState.EXITED:
            return status.exit_code, (executor.root / RUN_ID / "log").read_text(), notes
        await asyncio.sleep(0.025)
    raise TimeoutError(f"{command!r} did not end")


PROBE = f"""python - <<'EOF'
import importlib, os, sys, sysconfig
from shipyard.sdk import log_metrics
base_site = sysconfig.get_path("purelib", vars={{"base": sys.base_prefix}})
print("base site-packages", base_site, len(os.listdir(base_site)))
print("executable", sys.executable)
print("virtual_env", os.environ.get("VIRTUAL_ENV"))
print("path", os.environ["PATH"])
for name in ("shipyard_run", "shipyard.kit", "grpc", "pydantic"):
    try:
        importlib.import_module(name)
        print("imported", name)
    except ImportError:
        print("refused", name)
print("sees run-svc's python", os.path.exists({sys.prefix!r}))
EOF"""


async def test_a_run_has_its_environments_python_the_sdk_and_none_of_shipyards_packages(
        tmp_path: Path, shared: LocalEnvironments) -> None:
    executor = await _executor(tmp_path, shared)
    environment = _environment("python", [])

    code, log, notes = await _run(executor, PROBE, environment)

    built = shared.built(environment.digest)
    assert code == 0, log
    assert built is not None and f"executable {built.bin}/python" in log
    assert f"virtual_env {built.path}" in log and f"path {built.bin}:" in log
    for name in ("shipyard_run", "shipyard.kit", "grpc", "pydantic"):
        assert f"refused {name}" in log
    assert "sees run-svc's python False" in log
    assert built.hidden and f"base site-packages {built.hidden[0]} 0" in log  # the host's packages: hidden
    named = f"environment python (sha256 {environment.digest[:8]}"
    assert any(named in note and "Python 3." in note for note in notes)


async def test_a_run_in_the_sklearn_13_environment_trains_with_its_own_packages(
        tmp_path: Path, shared: LocalEnvironments) -> None:
    executor = await _executor(tmp_path, shared)
    command = """python - <<'EOF'
import pickle, pandas, sklearn
from sklearn.linear_model import LogisticRegression
print("sklearn", sklearn.__version__, "pandas", pandas.__version__)
frame = pandas.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
model = LogisticRegression().fit(frame[["x"]], frame["y"])
with open("/model/model.pkl", "wb") as out:
    pickle.dump(model, out)
EOF"""

    code, log, _ = await _run(executor, command, _environment("sklearn-1.3", SKLEARN_13))

    assert code == 0, log
    assert "sklearn 1.3." in log and "pandas " in log
    assert (executor.root / RUN_ID / "outputs" / "model" / "model.pkl").read_bytes()[:1] == pickle.PROTO


async def test_without_isolation_a_run_still_gets_its_environment_first_on_path(
        tmp_path: Path, shared: LocalEnvironments) -> None:
    executor = await _executor(tmp_path, shared, isolation="turned off for a test")
    environment = _environment("python", [])

    code, log, _ = await _run(executor, 'echo "path $PATH"; echo "venv $VIRTUAL_ENV"; python -c '
                                        '"import sys; print(\'executable\', sys.executable)"', environment)

    built = shared.built(environment.digest)
    assert code == 0, log
    assert built is not None and f"path {built.bin}:" in log and f"venv {built.path}" in log
    assert f"executable {built.bin}/python" in log

"""Runs' Python environments on this machine: one virtual environment per digest, built with uv.

``<root>/<digest>/`` is the environment (venvs are not relocatable, so it is built where it stays),
``<root>/<digest>.log`` uv's output for it (kept), ``<root>/<digest>.lock`` the lock its builders
take, and ``<root>/uv-cache`` uv's cache, shared by every environment: a package is downloaded and
unpacked once, and installed into each environment as hard links, so a second environment of the
same packages costs seconds. An environment is ready only once its marker
(``<root>/<digest>/.shipyard-environment.json``, written last, by rename) is there; a directory
without one is what a build left when it died, is never used, and is removed by the next build.

Builds of one digest happen once: an asyncio lock per digest in this process, and an ``fcntl`` lock
on the lock file across processes (two run-svcs on one data directory). uv's processes hold that
lock file too, so a uv left running by a run-svc that was killed keeps the lock until it ends, and
the next build does not start in a directory it still writes.

Bytecode: a run's environment is read-only to it, so whatever bytecode the build leaves out would be
compiled again, in memory, at every import of every run. A build hard-links what other environments
compiled of the same files (the same inode in uv's cache), compiles a few missing modules itself, and
when many are missing (the first environment of a set of packages) marks the environment ready
first and compiles them in the background (its marker then says so; a build that finds them still
missing, e.g. after a kill -9, compiles them again).

Every environment carries Shipyard's SDK (``shipyard.sdk``, one stdlib-only module) and nothing else
of Shipyard. Packages come from uv's default index (PyPI), or the operator's index
(``package_index_url``), a folder of wheels (``package_find_links``), or only that folder and uv's
cache (``packages_offline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import uv

from shipyard.kit.bubblewrap import inside
from shipyard.kit.environments import platform_python, sdk_module
from shipyard_run.app.ports import EnvironmentFailed, JobEnvironment

log = logging.getLogger(__name__)
MARKER = ".shipyard-environment.json"
CACHE = "uv-cache"
DIGEST = re.compile(r"[0-9a-f]{64}")
_DRAWING = re.compile("^[\\s\u00d7\u2570\u2500\u25b6\u2502\u251c|]+")  # the tree uv draws its errors with
_CREDENTIALS = re.compile(r"://[^/@\s]+@")  # user:password@ in an index URL
Failure = Callable[[str], EnvironmentFailed]  # what a failed command raises, made from its output
UV_TIMEOUT_S = 3600  # large packages (TensorFlow, PyTorch) take long to fetch; a uv that hangs ends
DONORS = 3  # environments whose bytecode a build borrows
COMPILE_NOW = 200  # modules whose bytecode a build compiles before the environment is ready
ERROR_LINES = 12  # of uv's output, in the error a failed build gives
# The SDK package as environments carry it: the package's docstring only (none of Shipyard's internals).
SDK_PACKAGE = ('"""Shipyard\'s public SDK as a run\'s environment carries it: '
               '``from shipyard.sdk import log_metrics``."""\n')
# What the environment's Python reports: its version, the prefix of its base interpreter and where
# that interpreter really is (the sandbox shows the run these, read-only), and that interpreter's own
# site-packages (the sandbox hides them: the platform's host packages, never the run's).
_PROBE = ("import json, os, sys, sysconfig; "
          "base = {'base': sys.base_prefix, 'platbase': sys.base_exec_prefix}; "
          "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
          "'base_prefix': sys.base_prefix, 'base_exec_prefix': sys.base_exec_prefix, "
          "'executable': os.path.realpath(sys.executable), 'cache_tag': sys.implementation.cache_tag, "
          "'site_packages': sorted("
          "{sysconfig.get_path(name, vars=base) for name in ('purelib', 'platlib')})}))")


@dataclass(frozen=True)
class PackageSources:
    """Where environments' packages come from (run-svc's settings)."""

    index_url: str = ""  # empty: uv's default, PyPI
    find_links: str = ""  # a folder (or page) of wheels, besides the index
    offline: bool = False  # only ``find_links`` and uv's cache: no network at all

    def options(self) -> list[str]:
        """uv pip's (and pip's) options for these sources but the index (``index_variables``)."""
        args = ["--find-links", self.find_links] if self.find_links else []
        return [*args, "--offline", "--no-index"] if self.offline else args

    def index_variables(self, name: str) -> dict[str, str]:
        """The index as the environment variable ``name`` (uv's UV_DEFAULT_INDEX, pip's PIP_INDEX_URL), not
        an option: its URL may hold a password, and every local user can read a process's command line,
        only its own user its environment."""
        return {name: self.index_url} if self.index_url and not self.offline else {}

    def described(self) -> str:
        """Where packages come from, for an error message."""
        if self.offline:
            return f"offline: only {self.find_links or 'no folder of wheels'} and the cache"
        return _redacted(" and ".join(filter(None, [self.index_url or "PyPI", self.find_links])))


@dataclass(frozen=True)
class BuiltEnvironment:
    """A ready environment, as its marker records it."""

    path: str  # the environment's directory (its VIRTUAL_ENV)
    python: str  # major.minor
    interpreter: str  # the base interpreter it was made from
    directories: tuple[str, ...]  # what a sandbox shows read-only for it: itself and its base Python
    hidden: tuple[str, ...] = ()  # its base Python's own site-packages: shown empty (not the run's)
    packages: tuple[str, ...] = ()  # name==version, as uv pip freeze says
    built_at: float = 0.0
    build_s: float = 0.0
    cache_tag: str = ""  # its Python's bytecode tag, e.g. cpython-311
    bytecode: bool = False  # every module's bytecode is there (else it is being compiled)

    @property
    def bin(self) -> str:
        """The directory of its executables (first on a run's PATH)."""
        return f"{self.path}/bin"

    @property
    def site(self) -> Path:
        """Its site-packages."""
        return Path(self.path, "lib", f"python{self.python}", "site-packages")


class LocalEnvironments:
    """The environments under ``root``, built with uv from ``sources``."""

    def __init__(self, root: Path, sources: PackageSources | None = None, uv_bin: str | None = None) -> None:
        # Absolute and real: runs find their interpreter (PATH, VIRTUAL_ENV) at this path, and a
        # sandbox shows it there.
        self.root = Path(os.path.realpath(root))
        self.sources = sources or PackageSources()
        self.uv_bin = uv_bin or uv.find_uv_bin()
        self._locks: dict[str, asyncio.Lock] = {}
        self._compiling: dict[str, asyncio.Task[None]] = {}

    def path(self, digest: str) -> Path:
        """Where the environment of ``digest`` is (or will be)."""
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"not an environment digest: {digest!r}")
        return self.root / digest

    def log_path(self, digest: str) -> Path:
        """The build log of ``digest`` (uv's output, every build's)."""
        return self.root / f"{self.path(digest).name}.log"

    def built(self, digest: str) -> BuiltEnvironment | None:
        """The environment of ``digest`` if it is ready (its marker is there), else None."""
        try:
            record = json.loads((self.path(digest) / MARKER).read_text())
            record["directories"] = tuple(record["directories"])
            record["hidden"] = tuple(record["hidden"])
            record["packages"] = tuple(record["packages"])
            return BuiltEnvironment(**record)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    async def ready(self, environment: JobEnvironment) -> bool:
        """Whether ``environment`` is built."""
        return await asyncio.to_thread(self.built, environment.digest) is not None

    async def build(self, environment: JobEnvironment) -> BuiltEnvironment:
        """``environment``, built now unless it is already (once, however many ask at a time, in this
        process or another); EnvironmentFailed saying what could not be installed."""
        lock = self._locks.setdefault(environment.digest, asyncio.Lock())
        async with lock:
            found = await asyncio.to_thread(self.built, environment.digest)
            if found is None:
                found = await asyncio.to_thread(self._build, environment)
        if not found.bytecode:  # also one a run-svc killed meanwhile left to compile
            self._compile_soon(environment)
        return found

    async def compiled(self) -> None:
        """Wait until the bytecode compiles under way in this process have ended."""
        while self._compiling:
            await asyncio.gather(*self._compiling.values(), return_exceptions=True)

    def _compile_soon(self, environment: JobEnvironment) -> None:
        """Compile the environment's missing bytecode in the background: it is ready already (runs
        start meanwhile, compiling what they import in memory, as Python does without bytecode)."""
        if environment.digest in self._compiling:
            return
        task = asyncio.create_task(asyncio.to_thread(self._compile_bytecode, environment))
        self._compiling[environment.digest] = task

        def ended(done: asyncio.Task[None]) -> None:
            self._compiling.pop(environment.digest, None)
            if not done.cancelled() and (exc := done.exception()) is not None:
                log.warning("the bytecode of environment %s could not be compiled (the next build "
                            "tries again): %s", environment.image, exc)

        task.add_done_callback(ended)

    def _compile_bytecode(self, environment: JobEnvironment) -> None:
        with _locked(self.root / f"{environment.digest}.lock") as lock_fd:
            found = self.built(environment.digest)
            if found is not None and not found.bytecode:  # another process may have done it
                _Build(self, environment, self.path(environment.digest), lock_fd).compile(found)

    def _build(self, environment: JobEnvironment) -> BuiltEnvironment:
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f"{environment.digest}.lock") as lock_fd:
            found = self.built(environment.digest)  # another process built it meanwhile
            if found is not None:
                return found
            target = self.path(environment.digest)
            shutil.rmtree(target, ignore_errors=True)  # what a build that died left: never used
            try:
                return _Build(self, environment, target, lock_fd).run()
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise


class _Build:
    """One build of one environment, its uv commands logged to the environment's log."""

    def __init__(self, environments: LocalEnvironments, environment: JobEnvironment, target: Path,
                 lock_fd: int) -> None:
        self.environments = environments
        self.environment = environment
        self.target = target
        self.lock_fd = lock_fd
        self.cache = environments.root / CACHE
        self.log = environments.log_path(environment.digest)

    def run(self) -> BuiltEnvironment:
        started = time.monotonic()
        self._note(f"building environment {self.environment.image} ({self.environment.digest}) at "
                   f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        interpreter = self._interpreter()
        self._uv(["venv"], ["--no-project", "--quiet", "--no-python-downloads", "--python", interpreter,
                            str(self.target)])
        python = str(self.target / "bin" / "python")
        probe = json.loads(self._run([python, "-c", _PROBE]))
        site = self.target / "lib" / f"python{probe['version']}" / "site-packages"
        if self.environment.requirements:
            # Wheels only: building a source distribution would run its author's code as run-svc.
            self._uv(["pip", "install"], ["--python", python, "--link-mode", "hardlink", "--no-build",
                                          *self.environments.sources.options(), "--",
                                          *self.environment.requirements], failure=self._unresolved)
        _add_sdk(site)
        frozen = self._uv(["pip", "freeze"], ["--python", python])
        packages = tuple(line for line in frozen.splitlines() if "==" in line)
        missing = _borrow_bytecode(site, probe["cache_tag"], self._donors(probe["version"], packages))
        # A few modules (the SDK, a package no other environment has): compiled now. Many (a first
        # environment of these packages): compiled in the background once the environment is ready,
        # which then takes a few seconds instead of tens.
        compile_now = len(missing) <= COMPILE_NOW
        if compile_now:
            self._compile(python, missing)
        built = BuiltEnvironment(
            path=str(self.target), python=probe["version"], interpreter=interpreter,
            directories=_outermost([str(self.target), probe["base_prefix"], probe["base_exec_prefix"],
                                    os.path.dirname(probe["executable"])]),
            hidden=tuple(p for p in map(os.path.realpath, probe["site_packages"]) if os.path.isdir(p)),
            packages=packages, built_at=time.time(), build_s=round(time.monotonic() - started, 3),
            cache_tag=probe["cache_tag"], bytecode=compile_now)
        _record(built)  # last: only now is the environment ready
        self._note(f"ready in {built.build_s:.1f} s: {len(built.packages)} packages"
                   + ("" if compile_now else f"; bytecode of {len(missing)} modules to compile"))
        return built

    def compile(self, built: BuiltEnvironment) -> None:
        """Compile the bytecode ``built`` lacks (borrowing what other environments have), then say so
        in its marker."""
        started = time.monotonic()
        missing = _borrow_bytecode(built.site, built.cache_tag, self._donors(built.python, built.packages))
        self._compile(f"{built.bin}/python", missing)
        _record(replace(built, bytecode=True))
        self._note(f"bytecode of {len(missing)} modules compiled in {time.monotonic() - started:.1f} s")

    def _donors(self, version: str, packages: tuple[str, ...]) -> list[Path]:
        """The site-packages of the ready environments of the same Python sharing the most packages
        with this one (a few): where bytecode of the same files may be compiled already."""
        shared: list[tuple[int, Path]] = []
        for marker in self.environments.root.glob(f"*/{MARKER}"):
            other = self.environments.built(marker.parent.name)
            if other is not None and other.python == version and other.path != str(self.target):
                common = len(set(other.packages) & set(packages))
                if common:
                    shared.append((common, Path(other.path, "lib", f"python{version}", "site-packages")))
        return [site for _, site in sorted(shared, key=lambda found: -found[0])[:DONORS]]

    def _compile(self, python: str, missing: list[str]) -> None:
        """Compile the bytecode of the ``missing`` modules, in parallel. A run's environment is
        read-only to it: bytecode missing here would be compiled again at every import of every run."""
        if missing:
            # compileall's own failures (a package's Python 2 test data, say) do not fail the build.
            # Isolated and without site-packages (-I -S): a package's .pth file must not run as run-svc.
            self._run([python, "-I", "-S", "-m", "compileall", "-q", "-j", "0", "-i", "-"],
                      stdin="\n".join(missing),
                      check=False)

    def _interpreter(self) -> str:
        """The base interpreter of the environment's Python: run-svc's own base interpreter for the
        platform's version (never run-svc's virtual environment), else one uv finds on this machine."""
        wanted = self.environment.python or platform_python()
        if wanted == platform_python():
            return os.path.realpath(getattr(sys, "_base_executable", sys.executable))

        def missing(output: str) -> EnvironmentFailed:
            return EnvironmentFailed(
                f"Python {wanted} is not installed on this machine ({_last_lines(output, 2)}); the operator "
                f"can install it, or use an image with Python {platform_python()} (the platform's)")

        found = self._uv(["python", "find"], ["--system", "--no-python-downloads", wanted], failure=missing)
        return found.strip()

    def _unresolved(self, output: str) -> EnvironmentFailed:
        return EnvironmentFailed(
            f"environment {self.environment.image}: its requirements could not be installed "
            f"({self.environments.sources.described()}): {_last_lines(output, ERROR_LINES)} "
            f"(build log: {self.log})")

    def _uv(self, subcommand: list[str], args: list[str], failure: Failure | None = None) -> str:
        """uv's ``subcommand`` with ``args``, on the shared cache and without any uv configuration file
        (the operator's settings decide where packages come from)."""
        return self._run([self.environments.uv_bin, *subcommand, "--no-config", "--cache-dir",
                          str(self.cache), *args], failure,
                         variables=self.environments.sources.index_variables("UV_DEFAULT_INDEX"))

    def _run(self, command: list[str], failure: Failure | None = None, stdin: str = "", check: bool = True,
             variables: dict[str, str] | None = None) -> str:
        """Run ``command`` (holding the build's lock), its output appended to the log; its stdout.
        A failure (when ``check``): ``failure(output)`` raised, or an EnvironmentFailed with the
        output's last lines. ``variables``: added to its environment (none of run-svc's uv or pip's)."""
        self._note("$ " + _redacted(" ".join(command)))
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("UV_", "PIP_", "PYTHON", "CONDA")) and key != "VIRTUAL_ENV"}
        env |= variables or {}
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env,
                                  cwd=self.environments.root, timeout=UV_TIMEOUT_S,
                                  pass_fds=(self.lock_fd,), umask=0o022)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._note(f"failed: {exc}")
            raise EnvironmentFailed(f"environment {self.environment.image}: {command[1]} failed: {exc}") \
                from exc
        with self.log.open("a") as out:
            out.write(done.stderr)
        if done.returncode != 0:
            self._note(f"exit status {done.returncode}")
            if not check:
                return done.stdout
            output = done.stderr or done.stdout
            if failure is not None:
                raise failure(output)
            said = _last_lines(output, ERROR_LINES)
            raise EnvironmentFailed(f"environment {self.environment.image}: {said} (build log: {self.log})")
        return done.stdout

    def _note(self, line: str) -> None:
        with self.log.open("a") as out:
            out.write(f"== {line}\n")


def _add_sdk(site: Path) -> None:
    """Put Shipyard's SDK (``shipyard/__init__.py``, a docstring, and ``shipyard/sdk.py``) into the
    environment's site-packages: the only piece of Shipyard a run's code sees."""
    package = site / "shipyard"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(SDK_PACKAGE)
    shutil.copyfile(sdk_module(), package / "sdk.py")
    for path in (package, package / "__init__.py", package / "sdk.py"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _redacted(text: str) -> str:
    """``text`` without the credentials of the URLs in it: build logs and errors are shown to users."""
    return _CREDENTIALS.sub("://***@", text)


def _record(built: BuiltEnvironment) -> None:
    """Write ``built``'s marker, whole or not at all (a new file renamed over the old)."""
    marker = Path(built.path, MARKER)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(built), indent=2))
    tmp.rename(marker)


def _borrow_bytecode(site: Path, tag: str, donors: list[Path]) -> list[str]:
    """Hard-link into ``site`` the bytecode ``donors`` (other environments' site-packages) hold of the
    same source files, and return the sources still without bytecode. The same file means the same
    inode: both environments hold hard links into uv's cache, so the source's bytes, mtime and size
    (what the bytecode is checked against) are the same, and Python sets a code object's file name
    to the importing path as it loads it."""
    known: dict[tuple[int, int], str] = {}
    for donor in donors:
        known.update(_bytecode_by_source(donor, tag))
    missing: list[str] = []
    for directory, _, files in os.walk(site):
        for name in files:
            if not name.endswith(".py"):
                continue
            source = os.path.join(directory, name)
            identity = _identity(source)
            compiled = known.get(identity) if identity is not None else None
            if compiled is None:
                missing.append(source)
                continue
            cache = os.path.join(directory, "__pycache__")
            if not os.path.isdir(cache):
                os.mkdir(cache)
                os.chmod(cache, 0o755)  # whatever run-svc's umask: the run's user reads it
            with contextlib.suppress(FileExistsError):
                os.link(compiled, os.path.join(cache, f"{name[:-3]}.{tag}.pyc"))
    return missing


def _bytecode_by_source(site: Path, tag: str) -> dict[tuple[int, int], str]:
    """The bytecode files under ``site`` (not optimized ones) by their source file's identity."""
    found: dict[tuple[int, int], str] = {}
    for directory, _, files in os.walk(site):
        if os.path.basename(directory) != "__pycache__":
            continue
        for name in files:
            stem, _, rest = name.partition(".")
            source = _identity(os.path.join(directory, "..", f"{stem}.py")) if rest == f"{tag}.pyc" else None
            if source is not None:
                found[source] = os.path.join(directory, name)
    return found


def _identity(path: str) -> tuple[int, int] | None:
    """A file's (device, inode); None when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _outermost(paths: list[str]) -> tuple[str, ...]:
    """``paths`` (made real), outermost first, none inside another."""
    found = sorted({os.path.realpath(p) for p in paths}, key=lambda p: (p.count("/"), p))
    return tuple(p for p in found if not any(p != q and inside(p, q) for q in found))


def _last_lines(output: str, count: int) -> str:
    """uv's last ``count`` meaningful lines, on one line (its tree-drawing characters dropped)."""
    lines = [_DRAWING.sub("", line).strip() for line in output.splitlines()]
    kept = [line for line in lines if line and not line.startswith(("hint:", "Using Python"))]
    return " ".join(kept[-count:]) or "no output"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """An exclusive ``flock`` on ``path`` (waiting for it), held while in the block; its descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)

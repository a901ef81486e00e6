"""The ports run-svc's use cases depend on; adapters implement them, tests fake them."""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.kit.caller import Caller
from shipyard.kit.clients.repos import CodeSnapshot, ImageChoice, RepoVersion
from shipyard.kit.clients.serving import ClusterEndpoints
from shipyard.kit.manifest import Manifest
from shipyard.kit.store.unit_of_work import Emitter, RequestLog, UnitOfWorkFactory
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.image_builds import ImageBuild
from shipyard_run.domain.runs import Distribution, MetricPoint, Run, RunKind, RunStatus, RunTemplate
from shipyard_run.domain.studies import Study
from shipyard_run.domain.tracking import ArtifactFile, LoggedModel
from shipyard_run.domain.trials import ParameterValue, TrialHistory
from shipyard_run.domain.tuning import TuningSpec


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list returns; empty fields do not filter."""

    project: str | None = None
    status: RunStatus | None = None
    kind: RunKind | None = None
    name_prefix: str = ""
    tag: str = ""
    study: str = ""  # a study's trials only
    exclude_trials: bool = False  # leave studies' trials out


class RunRepository(Protocol):
    """Runs in run-svc's store."""

    async def get(self, name: str) -> Run | None:
        """The run with that name."""

    async def by_id(self, run_id: str) -> Run | None:
        """The run with that id."""

    async def add(self, run: Run) -> Run:
        """Store a new run (revision 1); AlreadyExists when the name is taken."""

    async def save(self, run: Run) -> Run:
        """Store a change made on ``run.revision``; Aborted if someone changed it since."""

    async def remove(self, run: Run) -> None:
        """Delete the run as read at ``run.revision``; Aborted if it changed since."""

    async def list(self, where: RunFilter, after: tuple[int, str] | None, limit: int) -> list[Run]:
        """Runs newest first (by sequence) after the one with this (sequence, id)."""

    async def in_status(self, statuses: tuple[RunStatus, ...], limit: int) -> builtins.list[Run]:
        """Runs the platform executes (not external ones) in any of these statuses, oldest first."""

    async def of_projects(self, projects: tuple[str, ...]) -> builtins.list[Run]:
        """Every run of these projects ("" = of no project), newest first."""

    async def of_study(self, study: str) -> builtins.list[Run]:
        """The study's trials, in the order they were started."""


class StudyRepository(Protocol):
    """Hyperparameter studies in run-svc's store."""

    async def get(self, name: str) -> Study | None:
        """The study with that name."""

    async def add(self, study: Study) -> Study:
        """Store a new study."""

    async def save(self, study: Study) -> Study:
        """Store a change made on ``study.revision``; Aborted if someone changed it since."""

    async def remove(self, study: Study) -> None:
        """Delete the study as read at ``study.revision``."""

    async def active(self) -> builtins.list[Study]:
        """Studies not ended yet, oldest first."""

    async def list(self, project: str | None, after: tuple[str, str] | None,
                   limit: int) -> builtins.list[Study]:
        """Studies newest first, after the one with this (create time, id)."""


class TemplateRepository(Protocol):
    """Run templates in run-svc's store."""

    async def get(self, name: str) -> RunTemplate | None:
        """The template with that name."""

    async def add(self, template: RunTemplate) -> RunTemplate:
        """Store a new template; AlreadyExists when the name is taken."""

    async def remove(self, template: RunTemplate) -> None:
        """Delete the template as read."""

    async def list(self) -> builtins.list[RunTemplate]:
        """Every template, by name."""


class MetricLog(Protocol):
    """Every metric point of every run."""

    async def append(self, run_id: str, points: list[MetricPoint]) -> None:
        """Add points to the run's series."""

    async def series(self, run_id: str) -> list[MetricPoint]:
        """The run's points in the order they were logged."""

    async def forget(self, run_id: str) -> None:
        """Forget the run's points."""


class ConfigFiles(Protocol):
    """The configuration files uploaded with runs (kept apart: up to 1 MiB each), by the id of
    their run or template."""

    async def put(self, owner_id: str, data: bytes) -> None:
        """Keep the run's (or template's) file."""

    async def get(self, owner_id: str) -> bytes:
        """The file (empty when there is none)."""

    async def forget(self, owner_id: str) -> None:
        """Forget the file, if there is one."""


class BuildRepository(Protocol):
    """Image builds in run-svc's store."""

    async def by_id(self, build_id: str) -> ImageBuild | None:
        """The build with that id."""

    async def add(self, build: ImageBuild) -> ImageBuild:
        """Store a new build."""

    async def save(self, build: ImageBuild) -> ImageBuild:
        """Store a change made on ``build.revision``; Aborted if someone changed it since."""

    async def latest(self, name: str) -> ImageBuild | None:
        """The newest build of the image ``name``."""

    async def list(self, name: str = "", limit: int = 1000) -> builtins.list[ImageBuild]:
        """Builds newest first (of one image, when ``name`` is given)."""

    async def building(self) -> builtins.list[ImageBuild]:
        """Builds not ended yet, oldest first."""


class ArtifactRepository(Protocol):
    """The artifact files of runs and of the models they logged."""

    async def put(self, item: ArtifactFile) -> bool:
        """Store the file, replacing one at the same path; whether it is new."""

    async def get(self, owner: str, path: str) -> ArtifactFile | None:
        """The file at ``path`` of ``owner`` (a run's id or a logged model's)."""

    async def of_owner(self, owner: str) -> builtins.list[ArtifactFile]:
        """Every file of ``owner``."""

    async def forget(self, owner: str) -> None:
        """Forget every file of ``owner``."""


class LoggedModelRepository(Protocol):
    """Models runs logged."""

    async def by_id(self, model_id: str) -> LoggedModel | None:
        """The model with that id."""

    async def add(self, model: LoggedModel) -> LoggedModel:
        """Store a new model."""

    async def save(self, model: LoggedModel) -> LoggedModel:
        """Store a change; Aborted when it changed since it was read."""

    async def remove(self, model: LoggedModel) -> None:
        """Delete the model."""

    async def of_run(self, run_id: str) -> builtins.list[LoggedModel]:
        """The models the run logged."""

    async def of_projects(self, projects: tuple[str, ...]) -> builtins.list[LoggedModel]:
        """The models logged by runs of these projects."""


class ClusterRepository(Protocol):
    """The clusters operators added."""

    async def by_id(self, name: str) -> Cluster | None:
        """The cluster named ``name``."""

    async def add(self, cluster: Cluster) -> Cluster:
        """Store a new cluster."""

    async def save(self, cluster: Cluster) -> Cluster:
        """Store a change; Aborted when it changed since it was read."""

    async def remove(self, cluster: Cluster) -> None:
        """Delete the cluster."""

    async def find(self) -> builtins.list[Cluster]:
        """Every cluster."""


class ManifestWriter(Protocol):
    """Stores a manifest (the file list of a version) in the blob store."""

    async def put_manifest(self, manifest: Manifest) -> str:
        """Store it; its digest."""


class CodeFiles(Protocol):
    """A code snapshot's small text files, as the build files and requirement files are read."""

    async def text_files(self, manifest_digest: str) -> dict[str, str]:
        """Path → text of the snapshot's files a build may read (requirement, YAML, TOML files and
        Dockerfiles, each at most a few hundred KiB)."""


class UnitOfWork(Emitter, Protocol):
    """One transaction over run-svc's repositories; events recorded in it are committed with it."""

    @property
    def runs(self) -> RunRepository:
        """Runs in this transaction."""

    @property
    def metrics(self) -> MetricLog:
        """Metric points in this transaction."""

    @property
    def requests(self) -> RequestLog:
        """Submit-request ids in this transaction."""

    @property
    def configs(self) -> ConfigFiles:
        """Configuration files (of runs and templates) in this transaction."""

    @property
    def templates(self) -> TemplateRepository:
        """Run templates in this transaction."""

    @property
    def artifacts(self) -> ArtifactRepository:
        """Artifact files."""

    @property
    def logged_models(self) -> LoggedModelRepository:
        """Logged models."""

    @property
    def clusters(self) -> ClusterRepository:
        """Clusters."""

    @property
    def builds(self) -> BuildRepository:
        """Image builds in this transaction."""

    @property
    def studies(self) -> StudyRepository:
        """Hyperparameter studies in this transaction."""


Units = UnitOfWorkFactory[UnitOfWork]
"""Starts run-svc's units of work: ``async with uow() as tx: ...``."""


class RepoReader(Protocol):
    """Reads from repo-svc (it owns repos and versions); the kit's ``RepoClient`` is the adapter."""

    async def version(self, caller: Caller, repo_kind: str, repo: str, number: int) -> RepoVersion:
        """That version (0: the latest); NotFound or FailedPrecondition as repo-svc says."""

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> CodeSnapshot:
        """The code repo's files at ``commit`` (empty: its latest), stored for the run."""

    async def check_write(self, caller: Caller, repo_kind: str, repo: str) -> str:
        """The repo's id, if it exists, is versioned and ``caller`` may write its next version
        (repo-svc decides); PermissionDenied, FailedPrecondition or NotFound naming it otherwise."""

    async def resolve_image(self, caller: Caller, name: str, framework: str,
                            framework_version: str) -> ImageChoice:
        """The catalog image named ``name``, or the standard image of ``framework`` and version (with
        neither: the default image); NotFound naming what was asked for otherwise."""

    async def create_version(self, caller: Caller, repo_kind: str, repo: str, manifest_digest: str, *,
                             produced_by_run: str = "", produced_by_run_name: str = "",
                             metrics: Mapping[str, float] | None = None,
                             params: Mapping[str, str] | None = None, message: str = "",
                             request_id: str = "", parent_version: int = 0) -> repos_pb2.Version:
        """A new version as repo-svc makes it, produced by that run (repo-svc takes a run's facts
        from run-svc only)."""


class ServedEndpoints(Protocol):
    """What serving-svc serves on a cluster (its internal ListClusterEndpoints); the kit's
    ``ServingClient`` is the adapter."""

    async def endpoints_on(self, caller: Caller, cluster: str) -> ClusterEndpoints:
        """The test inferences and deployments on ``cluster``; Unavailable when serving-svc cannot say."""


class JobState(Enum):
    """Where an executor's job is."""

    NOT_STARTED = "not-started"  # nothing was started for the run (e.g. run-svc died while starting it)
    RUNNING = "running"
    EXITED = "exited"
    GONE = "gone"  # started once, now neither running nor did it leave an exit code
    # A cluster ended it at a limit (time, memory), or will never run it as asked: the run fails, saying why.
    KILLED = "killed"
    NO_SPACE = "no-space"  # it ended on a full disk: its exit code (known or not) could not be recorded


@dataclass(frozen=True)
class JobStatus:
    """An executor's answer about one run's job."""

    state: JobState
    exit_code: int = 0
    detail: str = ""


@dataclass(frozen=True)
class JobInput:
    """A pinned input: its manifest, shown read-only at ``mount_path``."""

    mount_path: str
    manifest_digest: str


class EnvironmentFailed(Exception):
    """An environment could not be built; the message says what (e.g. the requirement that did
    not resolve) in words the run's user can act on."""


@dataclass(frozen=True)
class JobEnvironment:
    """The Python environment a job runs in on the local executor: built once per ``digest`` from
    ``python`` (major.minor; empty: the platform's) and ``requirements``; ``image`` names it."""

    image: str
    python: str
    requirements: tuple[str, ...]
    digest: str
    url: str = ""  # the image a cluster runs (its catalog URL; Kubernetes pulls it)


@dataclass(frozen=True)
class Job:
    """What an executor runs for a run (the run contract's inputs)."""

    run_id: str
    name: str
    command: str
    project: str = ""  # MLflow's experiment of the run (MLFLOW_EXPERIMENT_ID)
    inputs: tuple[JobInput, ...] = ()
    output_paths: tuple[str, ...] = ()  # "" = the SHIPYARD_OUTPUT directory
    hyperparameters: dict[str, str] = field(default_factory=dict)
    config_file_name: str = ""
    config: bytes = b""
    gpus: tuple[int, ...] = ()
    code_manifest: str = ""  # the code checked out in the working directory
    api_token: str = ""  # the run's own API token (SHIPYARD_TOKEN), good while the run is active
    api_server: str = ""  # the gateway's gRPC address as runs reach it (SHIPYARD_SERVER)
    api_url: str = ""  # the gateway's HTTP address as runs reach it (SHIPYARD_API_URL: the SDK's call)
    environment: JobEnvironment | None = None  # None: a run submitted before images existed
    owner: str = ""  # who submitted the run (on a cluster where each user signs in: whose account)
    gpu_count: int = 0  # GPUs a cluster gives the job (the local executor's are ``gpus``)
    time_limit: str = ""  # a cluster job's wall-clock limit (Slurm's forms)
    account: str = ""  # the cluster account it is charged to
    distribution: Distribution = Distribution.NONE  # GPU distribution across the cluster's nodes
    workers: int = 0  # manual distribution: workers beside the master, each with ``gpu_count`` GPUs
    # A trial's File or TensorFlowEvent collector reads here in its working directory ("": no such
    # collector): executors that cannot reach a job's files (slurmrestd, Kubernetes) have the job send them.
    collector_path: str = ""


class Executor(abc.ABC):
    """One kind of cluster: the local machine, Kubernetes, Slurm, LSF."""

    name: str
    # Called (on the event loop) when a job exits, so the scheduler looks at once rather than at
    # its next tick; the composition root connects it to the scheduler.
    on_exit: Callable[[], None]

    @abc.abstractmethod
    def gpu_count(self) -> int:
        """GPUs this executor's group has."""

    @abc.abstractmethod
    def isolation_missing(self) -> str:
        """Why runs cannot be isolated from the platform and from each other here, in words an
        operator can act on; "" when every run is."""

    async def environment_ready(self, environment: JobEnvironment) -> bool:
        """Whether a job in ``environment`` can start at once (False: ``build_environment`` first)."""
        return True

    async def build_environment(self, environment: JobEnvironment) -> None:  # noqa: B027 - no build: ready
        """Make ``environment`` (once, however many ask at a time); EnvironmentFailed naming what
        could not be installed. Executors whose environments are always ready build nothing."""

    async def read_environment_log(self, digest: str, offset: int, max_bytes: int) -> bytes:
        """What building the environment ``digest`` printed, from ``offset`` (empty: nothing)."""
        return b""

    @abc.abstractmethod
    async def submit(self, job: Job) -> tuple[str, ...]:
        """Prepare the job's inputs and start it; notes for the user (e.g. how inputs are shown)."""

    @abc.abstractmethod
    async def status(self, run_id: str) -> JobStatus:
        """Where the run's job is now."""

    @abc.abstractmethod
    async def stop(self, run_id: str) -> None:
        """Ask the job to end (SIGTERM), then end it (SIGKILL) after a grace period."""

    @abc.abstractmethod
    async def read_logs(self, run_id: str, offset: int, max_bytes: int) -> bytes:
        """The job's output (stdout and stderr together) from ``offset``."""

    async def read_run_files(self, run_id: str, path: str, max_bytes: int) -> dict[str, bytes] | None:
        """The regular files at ``path`` in the job's working directory (an absolute path is taken there
        too): the file, or every file under the directory, by path, at most ``max_bytes`` in all (the
        newest first where that is too much). Only the job's own files are read: nothing through a link,
        nothing but regular files, nothing above the working directory, whatever the job left there. Where
        run-svc cannot reach the job's files (through slurmrestd, on Kubernetes): what the job sent last of
        its ``Job.collector_path``. None where this executor cannot read a job's files. A running job's files
        are read again and again (a study reads what they gained): a file still being written may end in a
        line cut short."""
        return None

    async def run_files_stamp(self, run_id: str, path: str) -> str | None:
        """What changes whenever the files ``read_run_files`` would read at ``path`` change (their sizes and
        times), where the executor can tell that cheaply; None where it cannot (they are then read again)."""
        return None

    @abc.abstractmethod
    async def new_metrics(self, run_id: str) -> list[MetricPoint]:
        """Metric points logged since the last call (stdout ``name=value`` lines and the SDK's)."""

    @abc.abstractmethod
    async def stage_outputs(self, run_id: str) -> dict[str, str]:
        """Store the output directories in the blob store: mount path ("" for SHIPYARD_OUTPUT) →
        manifest digest."""

    @abc.abstractmethod
    async def start_tensorboard(self, run_id: str, run_name: str) -> str:
        """Serve the run's TensorBoard logs under /tensorboard/<run name>/; its address."""

    @abc.abstractmethod
    async def tensorboard_address(self, run_id: str) -> str | None:
        """Where the run's TensorBoard listens, or None when it does not run."""

    @abc.abstractmethod
    async def stop_tensorboard(self, run_id: str) -> None:
        """Stop the run's TensorBoard, if it runs."""

    @abc.abstractmethod
    async def remove(self, run_id: str) -> None:
        """Remove everything the run's job left (logs too), stopping its TensorBoard."""

    async def close(self) -> None:  # noqa: B027 - most executors hold no connection
        """Close what the executor holds open (a cluster's connections)."""

    @abc.abstractmethod
    async def cleanup(self, run_id: str) -> None:
        """Remove what the job left behind except its logs."""


class ClusterExecutors(Protocol):
    """Opens the executor of a cluster an operator added (Slurm, LSF, Kubernetes)."""

    def unsupported(self, cluster: Cluster) -> str:
        """Why no executor can run ``cluster``'s runs here ("" when one can)."""

    async def missing_login(self, cluster: Cluster, user: str) -> str:
        """Why ``user``'s runs cannot be sent to ``cluster`` for want of their own login ("" when
        they can: the cluster needs none, or the user gave theirs)."""

    def open(self, cluster: Cluster) -> Executor:
        """The executor of ``cluster`` (it connects on first use)."""


class EventFiles(Protocol):
    """Reads TensorFlow event files (Katib's TensorFlowEvent collector)."""

    def missing(self) -> str:
        """Why event files cannot be read here ("" when they can)."""

    def observations(self, files: Mapping[str, bytes], metrics: Sequence[str]) -> list[tuple[str, float]]:
        """The (metric, value) scalars the files hold for ``metrics``, in the order they were written: a
        scalar counts for a metric when its tag starts with the metric's last ``/`` part and its file lies
        in a directory ending with the part before it (Katib's rule)."""


class TrialSearch(Protocol):
    """A study's search algorithm and early-stopping rule (Optuna's samplers and pruners, scikit-optimize):
    stateless, rebuilt from the study's history at each call, so a restarted run-svc goes on where it was."""

    def suggest(
        self, spec: TuningSpec, history: Sequence[TrialHistory], count: int, seed: int
    ) -> list[dict[str, ParameterValue]]:
        """Up to ``count`` new assignments, none equal to an earlier trial's where the algorithm
        enumerates (grid, sobol); fewer, or none, when the search space is exhausted. ``seed`` makes the
        answer reproducible for the same history."""

    def check(self, spec: TuningSpec) -> None:
        """InvalidArgument naming the field (``tuning.algorithm…``) when the algorithm or early stopping
        cannot do what the spec asks."""

    def stop_early(self, spec: TuningSpec, history: Sequence[TrialHistory]) -> list[int]:
        """The numbers of the running trials that the spec's early stopping (medianstop, or hyperband's
        successive halving) would stop now, judged on their intermediate objective values."""

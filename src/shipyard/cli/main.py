"""The ``shipyard`` command: run the platform, sign in, and work with it.

Sub-commands load lazily: ``shipyard project list`` imports the projects module and the gRPC client,
not scikit-learn, the NATS broker or the HTTP client the other commands use. The help listing comes
from ``COMMANDS`` without importing anything (tests/cli checks it matches each command's own help).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import typer
from typer import _click as click  # the click Typer builds on (it ships its own copy)
from typer.core import TyperCommand, TyperGroup

Target = typer.Typer | Callable[..., Any]


@dataclass(frozen=True)
class Lazy:
    """A sub-command: its help (shown in ``shipyard --help``) and how to load it."""

    help: str
    load: Callable[[], Target]


def _projects() -> Target:
    from shipyard.cli import projects
    return projects.app


def _repo_kind(kind: str) -> Callable[[], Target]:
    def load() -> Target:
        from shipyard.cli import repos
        kind_app = repos.repo_app(kind)
        if kind == "model":
            from shipyard.cli import deployments
            kind_app.command("publish")(deployments.publish)
        return kind_app
    return load


def _repo() -> Target:
    from shipyard.cli import repos
    return repos.move


def _credentials() -> Target:
    from shipyard.cli import credentials
    return credentials.app


def _images() -> Target:
    from shipyard.cli import images
    return images.app


def _clusters() -> Target:
    from shipyard.cli import clusters
    return clusters.app


def _events() -> Target:
    from shipyard.cli import events
    return events.app


def _users() -> Target:
    from shipyard.cli import users
    return users.app


def _tokens() -> Target:
    from shipyard.cli import tokens
    return tokens.app


def _demo() -> Target:
    from shipyard.cli import demo
    return demo.demo


def _runs() -> Target:
    from shipyard.cli import runs
    return runs.app


def _studies() -> Target:
    from shipyard.cli import study
    return study.app


def _serving() -> Target:
    from shipyard.cli import serving
    return serving.app


def _catalog() -> Target:
    from shipyard.cli import deployments
    return deployments.catalog


def _deploy() -> Target:
    from shipyard.cli import deployments
    return deployments.deploy


def _deployment() -> Target:
    from shipyard.cli import deployments
    return deployments.deployment


def _templates() -> Target:
    from shipyard.cli import templates
    return templates.app


def _tensorboard() -> Target:
    from shipyard.cli import tensorboard
    return tensorboard.app


def _webhooks() -> Target:
    from shipyard.cli import webhooks
    return webhooks.app


def _activity() -> Target:
    from shipyard.cli import events
    return events.activity


def _lineage() -> Target:
    from shipyard.cli import lineage
    return lineage.app


def _dashboard() -> Target:
    from shipyard.cli import lineage
    return lineage.dashboard


def _admin() -> Target:
    from shipyard.cli import garbage, lineage
    admin = typer.Typer(help="Operators' tools.", no_args_is_help=True)
    admin.add_typer(lineage.admin_lineage, name="lineage")
    admin.command("gc")(garbage.collect_garbage)
    return admin


def _stack(name: str) -> Callable[[], Target]:
    def load() -> Target:
        from shipyard.cli import stack
        return cast(Target, getattr(stack, name))
    return load


COMMANDS: dict[str, Lazy] = {
    "project": Lazy("Projects: a team's workspace and leaderboard.", _projects),
    "code": Lazy("Code repos", _repo_kind("code")),
    "dataset": Lazy("Dataset repos and their versions.", _repo_kind("dataset")),
    "featureset": Lazy("Featureset repos and their versions.", _repo_kind("featureset")),
    "model": Lazy("Model repos and their versions.", _repo_kind("model")),
    "repo": Lazy("Repos of any kind.", _repo),
    "credential": Lazy("Credentials for private git repos, buckets and databases.", _credentials),
    "image": Lazy("Images: the environments runs execute in (standard ones per framework, and yours).",
                  _images),
    "cluster": Lazy("Clusters: the Slurm, Kubernetes and LSF schedulers runs may be sent to.", _clusters),
    "events": Lazy("Live events (CloudEvents) as they happen.", _events),
    "user": Lazy("Users, their roles, disabling and deleting them (operators only).", _users),
    "token": Lazy("API tokens: make, list and revoke them.", _tokens),
    "demo": Lazy("Prepare a dataset, train a model on it and show what came out (needs `make up` running).",
                 _demo),
    "run": Lazy("Runs: training, preprocessing and evaluation jobs.", _runs),
    "study": Lazy("Hyperparameter studies: runs submitted with --tuning, and their trials.", _studies),
    "inference": Lazy("Test inferences: serve a model version to try it (KServe V2 endpoints).", _serving),
    "catalog": Lazy("The model catalog: published model versions with their serving defaults.", _catalog),
    "deploy": Lazy("Deploy a catalog entry behind a stable endpoint (production engineers).", _deploy),
    "deployment": Lazy("Deployments: catalog entries served behind a stable endpoint.", _deployment),
    "template": Lazy("Run templates: a run's settings, to submit again.", _templates),
    "tensorboard": Lazy("TensorBoard for a run's SHIPYARD_TB_LOGDIR, served through the gateway.",
                        _tensorboard),
    "webhook": Lazy("Webhooks: events pushed to your automation (signed CloudEvents JSON).", _webhooks),
    "activity": Lazy("What happened lately (the activity feed), newest first.", _activity),
    "lineage": Lazy("Where things came from and what came of them (the provenance graph).", _lineage),
    "dashboard": Lazy("Recent jobs, runs by status, GPUs in use, repos and deployments.", _dashboard),
    "admin": Lazy("Operators' tools.", _admin),
    "up": Lazy("Run Shipyard on this machine until Ctrl-C (NATS, four services and the gateway).",
               _stack("up")),
    "login": Lazy("Sign in: with --server/--token, or (embedded mode) with the data directory's admin token.",
                  _stack("login")),
    "status": Lazy("Health of every part of the platform.", _stack("status")),
    "whoami": Lazy("Who the saved token belongs to.", _stack("whoami")),
}


def command_of(name: str, target: Target) -> click.Command:
    """The click command Typer makes of a sub-app or a function, named ``name``."""
    if isinstance(target, typer.Typer):
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The top-level group: loads a sub-command's module only when that sub-command runs."""

    listing = False  # formatting ``shipyard --help``: the registry's help suffices

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in COMMANDS if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self.listing:
            return TyperCommand(name=cmd_name, help=entry.help)
        command = command_of(cmd_name, entry.load())
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(help="Shipyard: an open, self-hostable MLOps platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=LazyGroup)


@app.callback()
def shipyard() -> None:
    """Shipyard: an open, self-hostable MLOps platform."""

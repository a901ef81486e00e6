"""Run templates and clones: a run's settings kept under a name, or copied into a new run.

Both go through :meth:`Runs.submit`, so a templated or cloned run is validated, pinned and
authorized like any other (its outputs need the right to write their repos). A config file is
its owner's: it comes along only for the run's (or template's) owner or an operator; anyone else
gets the settings without it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import AlreadyExists, NotFound, PermissionDenied
from shipyard.kit.rules import check_name, check_text
from shipyard_run.app.messages import over_template
from shipyard_run.app.ports import UnitOfWork, Units
from shipyard_run.app.runs import Runs, must_get
from shipyard_run.domain.runs import DESCRIPTION_MAX, Run, RunSpec, RunTemplate, cloned, unpinned


@dataclass
class Templates:
    """Templates, clones, and submits from a template, on top of the run use cases."""

    uow: Units
    runs: Runs
    clock: Clock = utc_now

    async def create(self, caller: Caller, name: str, from_run: str, description: str = "") -> RunTemplate:
        """A template of the run's settings; its inputs and code follow their latest versions, and
        it keeps the run's config file only when the caller may read it (owner or operator)."""
        check_name("name", name)
        check_text("description", description, DESCRIPTION_MAX)
        async with self.uow() as uow:
            run = await must_get(uow, from_run)
            if await uow.templates.get(name) is not None:
                raise AlreadyExists(f"a template named {name!r} exists already")
            config = await _config_for(caller, run.owner, uow, run.id)
            template = await uow.templates.add(RunTemplate(
                id=uuid.uuid4().hex, name=name, owner=caller.user, create_time=self.clock(),
                spec=_with_config(unpinned(run.spec), config), description=description))
            if config:
                await uow.configs.put(template.id, config)
            return template

    async def get(self, name: str) -> tuple[RunTemplate, bool]:
        """The template, and whether it has a config file."""
        async with self.uow() as uow:
            template = await _must_get_template(uow, name)
            return template, bool(await uow.configs.get(template.id))

    async def list(self) -> list[tuple[RunTemplate, bool]]:
        """Every template, by name, and whether each has a config file."""
        async with self.uow() as uow:
            return [(t, bool(await uow.configs.get(t.id))) for t in await uow.templates.list()]

    async def delete(self, caller: Caller, name: str) -> None:
        """Only its owner or an operator deletes a template; runs made from it stay."""
        async with self.uow() as uow:
            template = await _must_get_template(uow, name)
            if caller.user != template.owner and not caller.is_operator:
                raise PermissionDenied(f"template {name!r} belongs to {template.owner!r}; only its owner "
                                       "or an operator may delete it")
            await uow.templates.remove(template)

    async def submit(self, caller: Caller, template_name: str, given: pb.Run, config: bytes = b"",
                     request_id: str = "", tuning: bytes = b"", keep_trial_outputs: bool = False) -> Run:
        """A run from the template, the fields set in ``given`` laid over it; the template's config
        file only for its owner or an operator (others may upload their own); with a tuning file, a study."""
        async with self.uow() as uow:
            template = await _must_get_template(uow, template_name)
            config = config or await _config_for(caller, template.owner, uow, template.id)
        spec = _with_config(over_template(template.spec, given), config)
        return await self.runs.submit(caller, spec, config, request_id, tuning, keep_trial_outputs)

    async def clone(self, caller: Caller, name: str, new_name: str, hyperparameters: dict[str, str],
                    request_id: str = "") -> Run:
        """A copy of the run (same pinned inputs and commit; its config for its owner or an
        operator) under ``new_name``."""
        async with self.uow() as uow:
            source = await must_get(uow, name)
            config = await _config_for(caller, source.owner, uow, source.id)
        spec = _with_config(cloned(source.spec, new_name, hyperparameters), config)
        return await self.runs.submit(caller, spec, config, request_id)


async def _config_for(caller: Caller, owner: str, uow: UnitOfWork, key: str) -> bytes:
    """The config file kept under ``key``, if ``caller`` may read it: its owner or an operator."""
    if caller.user != owner and not caller.is_operator:
        return b""
    return await uow.configs.get(key)


def _with_config(spec: RunSpec, config: bytes) -> RunSpec:
    """Without a config file, the spec names none (no empty file at SHIPYARD_CONFIG)."""
    return spec if config else replace(spec, config_file_name="")


async def _must_get_template(uow: UnitOfWork, name: str) -> RunTemplate:
    template = await uow.templates.get(name)
    if template is None:
        raise NotFound(f"no run template named {name!r}")
    return template

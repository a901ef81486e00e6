"""Run templates and clones: a run's settings kept under a name, or copied into a new run.

Both go through :meth:`Runs.submit`, so a templated or cloned run is validated and pinned like
any other, and its config file comes along.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, NotFound, PermissionDenied
from shipyard.kit.rules import check_name, check_text
from shipyard_run.app.messages import over_template
from shipyard_run.app.ports import UnitOfWork, UnitOfWorkFactory
from shipyard_run.app.runs import OPERATOR, Runs, must_get, utc_now
from shipyard_run.domain.runs import DESCRIPTION_MAX, Run, RunTemplate, cloned, unpinned


@dataclass
class Templates:
    """Templates, clones, and submits from a template, on top of the run use cases."""

    uow: UnitOfWorkFactory
    runs: Runs
    clock: Callable[[], datetime] = utc_now

    async def create(self, caller: Caller, name: str, from_run: str, description: str = "") -> RunTemplate:
        """A template of the run's settings; its inputs and code follow their latest versions."""
        check_name("name", name)
        check_text("description", description, DESCRIPTION_MAX)
        async with self.uow() as uow:
            run = await must_get(uow, from_run)
            if await uow.templates.get(name) is not None:
                raise AlreadyExists(f"a template named {name!r} exists already")
            template = await uow.templates.add(RunTemplate(
                id=uuid.uuid4().hex, name=name, owner=caller.user, create_time=self.clock(),
                spec=unpinned(run.spec), description=description))
            config = await uow.configs.get(run.id)
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
            if caller.user != template.owner and not caller.has(OPERATOR):
                raise PermissionDenied(f"template {name!r} belongs to {template.owner!r}; only its owner "
                                       "or an operator may delete it")
            await uow.templates.remove(template)

    async def submit(self, caller: Caller, template_name: str, given: pb.Run, config: bytes = b"",
                     request_id: str = "") -> Run:
        """A run from the template, the fields set in ``given`` laid over it."""
        async with self.uow() as uow:
            template = await _must_get_template(uow, template_name)
            config = config or await uow.configs.get(template.id)
        return await self.runs.submit(caller, over_template(template.spec, given), config, request_id)

    async def clone(self, caller: Caller, name: str, new_name: str, hyperparameters: dict[str, str],
                    request_id: str = "") -> Run:
        """A copy of the run (same pinned inputs, commit and config) under ``new_name``."""
        async with self.uow() as uow:
            source = await must_get(uow, name)
            config = await uow.configs.get(source.id)
        return await self.runs.submit(caller, cloned(source.spec, new_name, hyperparameters), config,
                                      request_id)


async def _must_get_template(uow: UnitOfWork, name: str) -> RunTemplate:
    template = await uow.templates.get(name)
    if template is None:
        raise NotFound(f"no run template named {name!r}")
    return template

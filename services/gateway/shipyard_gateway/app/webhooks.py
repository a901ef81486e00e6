"""Webhook use cases: create, read, list and delete webhooks, and read their dead letters."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.kit.events import CATALOG
from shipyard.kit.ids import new_id
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard.kit.secrets import SecretBox
from shipyard_gateway.app.ports import Deliveries, EventStream, UnitOfWork, Units
from shipyard_gateway.domain.event_types import check_receivable
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook, check_secret, check_webhook

_TOKEN_TAG = "dead-letters"


@dataclass
class Webhooks:
    """Each user's webhooks; operators see everyone's."""

    uow: Units
    box: SecretBox
    stream: EventStream
    deliveries: Deliveries
    allow_private: bool = False
    clock: Clock = utc_now
    ids: Callable[[], str] = new_id

    async def create(self, caller: Caller, name: str, url: str, types: Sequence[str], project: str,
                     secret: str) -> Webhook:
        """A new webhook of the caller's, sent the events that follow from now on."""
        spec = check_webhook(name, url, types, project, self.allow_private)
        check_receivable("webhook.types", spec.types, caller.roles, CATALOG)
        check_secret(secret)
        async with self.uow() as tx:
            if await tx.webhooks.named(caller.user, spec.name) is not None:
                raise AlreadyExists(f"you already have a webhook named {spec.name!r}")
        # Read outside the transaction: a slow or absent bus must not hold the store.
        start = await self.stream.last_sequence()
        webhook = Webhook(id=self.ids(), name=spec.name, url=spec.url, types=spec.types, project=spec.project,
                          owner=caller.user, create_time=self.clock(), start_sequence=start,
                          sealed_secret=self.box.seal(secret))
        async with self.uow() as tx:
            webhook = await tx.webhooks.add(webhook)
        self.deliveries.start(webhook)
        return webhook

    async def get(self, caller: Caller, name: str) -> Webhook:
        """One of the caller's webhooks by name, or any visible one by id."""
        async with self.uow() as tx:
            return await _visible(tx, caller, name)

    async def list(self, caller: Caller) -> list[Webhook]:
        """The caller's webhooks; every webhook for an operator."""
        async with self.uow() as tx:
            return await tx.webhooks.of_owner(None if caller.is_operator else caller.user)

    async def delete(self, caller: Caller, name: str) -> None:
        """Delete a webhook: its deliveries stop and its dead letters go."""
        async with self.uow() as tx:
            webhook = await _visible(tx, caller, name)
            await tx.dead_letters.forget(webhook.id)
            await tx.webhooks.remove(webhook)
        await self.deliveries.stop(webhook.id)

    async def dead_letters(self, caller: Caller, name: str, page_size: int,
                           page_token: str) -> tuple[builtins.list[DeadLetter], str]:
        """A page of the webhook's dead letters, oldest first, and the next page's token ("" at the end)."""
        limit = page_limit(page_size)
        after = _after_sequence(page_token)
        async with self.uow() as tx:
            webhook = await _visible(tx, caller, name)
            letters = await tx.dead_letters.after(webhook.id, after, limit + 1)
        more = len(letters) > limit
        letters = letters[:limit]
        return letters, encode_token(_TOKEN_TAG, str(letters[-1].sequence)) if more else ""


async def _visible(tx: UnitOfWork, caller: Caller, name: str) -> Webhook:
    """The caller's webhook ``name``, or the webhook with id ``name`` if the caller may see it.

    Someone else's webhook is NotFound, as if it did not exist: its name is theirs to know."""
    webhook = await tx.webhooks.named(caller.user, name) or await tx.webhooks.by_id(name)
    if webhook is None or not webhook.visible_to(caller):
        raise NotFound(f"webhook {name!r} not found")
    return webhook


def _after_sequence(token: str) -> int:
    """The sequence a page token continues after (0: from the start)."""
    cursor = decode_token(_TOKEN_TAG, token, 1)
    if cursor is None:
        return 0
    if not cursor[0].isdigit():
        raise InvalidArgument("page_token", "is not a token this API returned")
    return int(cursor[0])

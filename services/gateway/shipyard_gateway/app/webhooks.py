"""Webhook use cases: create, read, list and delete webhooks, and read their dead letters."""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from shipyard.kit.caller import Caller
from shipyard.kit.errors import AlreadyExists, InvalidArgument, NotFound
from shipyard.kit.ids import new_id
from shipyard_gateway.app.ports import (
    Deliveries,
    EventStream,
    SecretBox,
    WebhookStore,
    WebhookStoreFactory,
)
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook, check_secret, check_webhook

PAGE_DEFAULT = 50
PAGE_MAX = 1000
_TOKEN_TAG = "dead-letters:"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Webhooks:
    """Each user's webhooks; operators see everyone's."""

    store: WebhookStoreFactory
    box: SecretBox
    stream: EventStream
    deliveries: Deliveries
    allow_private: bool = False
    clock: Callable[[], datetime] = _now
    ids: Callable[[], str] = new_id

    async def create(self, caller: Caller, name: str, url: str, types: Sequence[str], project: str,
                     secret: str) -> Webhook:
        """A new webhook of the caller's, sent the events that follow from now on."""
        spec = check_webhook(name, url, types, project, self.allow_private)
        check_secret(secret)
        async with self.store() as store:
            if await store.find(caller.user, spec.name) is not None:
                raise AlreadyExists(f"you already have a webhook named {spec.name!r}")
        # Read outside the transaction: a slow or absent bus must not hold the store.
        start = await self.stream.last_sequence()
        webhook = Webhook(id=self.ids(), name=spec.name, url=spec.url, types=spec.types, project=spec.project,
                          owner=caller.user, create_time=self.clock(), start_sequence=start)
        async with self.store() as store:
            await store.add(webhook, self.box.seal(secret))
        self.deliveries.start(webhook)
        return webhook

    async def get(self, caller: Caller, name: str) -> Webhook:
        """One of the caller's webhooks by name, or any visible one by id."""
        async with self.store() as store:
            return await _visible(store, caller, name)

    async def list(self, caller: Caller) -> list[Webhook]:
        """The caller's webhooks; every webhook for an operator."""
        async with self.store() as store:
            return await store.list(None if caller.has("operator") else caller.user)

    async def delete(self, caller: Caller, name: str) -> None:
        """Delete a webhook: its deliveries stop and its dead letters go."""
        async with self.store() as store:
            webhook = await _visible(store, caller, name)
            await store.remove(webhook.id)
        await self.deliveries.stop(webhook.id)

    async def dead_letters(self, caller: Caller, name: str, page_size: int,
                           page_token: str) -> tuple[builtins.list[DeadLetter], str]:
        """A page of the webhook's dead letters, oldest first, and the next page's token ("" at the end)."""
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        limit = min(page_size or PAGE_DEFAULT, PAGE_MAX)
        after = _decode_token(page_token)
        async with self.store() as store:
            webhook = await _visible(store, caller, name)
            letters = await store.dead_letters(webhook.id, after, limit + 1)
        more = len(letters) > limit
        letters = letters[:limit]
        return letters, _encode_token(letters[-1].sequence) if more else ""


async def _visible(store: WebhookStore, caller: Caller, name: str) -> Webhook:
    """The caller's webhook ``name``, or the webhook with id ``name`` if the caller may see it.

    Someone else's webhook is NotFound, as if it did not exist: its name is theirs to know."""
    webhook = await store.find(caller.user, name) or await store.get(name)
    if webhook is None or not webhook.visible_to(caller):
        raise NotFound(f"webhook {name!r} not found")
    return webhook


def _encode_token(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_TAG}{sequence}".encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode()
        if decoded.startswith(_TOKEN_TAG):
            return int(decoded.removeprefix(_TOKEN_TAG))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument("page_token", "is not a token this API returned")

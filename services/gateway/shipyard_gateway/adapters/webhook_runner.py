"""One asyncio task per webhook, each on its own consumer: webhooks never wait on each other.

Every gateway replica runs a task for every stored webhook (their shared consumer hands each
event to one of them); a periodic look at the store starts the tasks of webhooks made on
other replicas and stops those of webhooks deleted there, and restarts a task that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from shipyard.kit.secrets import SecretBox
from shipyard_gateway.app.delivery import Delivery
from shipyard_gateway.app.ports import RolesOf, Sender, Units, WebhookFeed
from shipyard_gateway.domain.webhooks import RetryPolicy, Webhook

log = logging.getLogger(__name__)

SYNC_S = 5.0


class WebhookRunner:
    """The Deliveries port: starts and stops each webhook's delivery task."""

    def __init__(self, events: WebhookFeed, uow: Units, box: SecretBox, send: Sender, roles_of: RolesOf,
                 retry: RetryPolicy) -> None:
        self._events = events
        self._uow = uow
        self._box = box
        self._send = send
        self._roles_of = roles_of
        self._retry = retry
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._unreadable: set[str] = set()  # webhooks whose secret the key cannot open

    def start(self, webhook: Webhook) -> None:
        """Run the webhook's delivery task unless it runs already."""
        task = self._tasks.get(webhook.id)
        if webhook.id not in self._unreadable and (task is None or task.done()):
            self._tasks[webhook.id] = asyncio.create_task(self._run(webhook), name=f"webhook-{webhook.id}")

    async def stop(self, webhook_id: str) -> None:
        """Stop the webhook's task and delete its consumer."""
        self._unreadable.discard(webhook_id)
        task = self._tasks.pop(webhook_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._events.forget(webhook_id)

    async def run_forever(self) -> None:
        """Keep one task per stored webhook until cancelled (the gateway stopping)."""
        try:
            while True:
                try:
                    await self._sync()
                except Exception as exc:  # the store or NATS away for a moment: next round
                    log.warning("webhooks: could not sync the delivery tasks (%s)", exc)
                await asyncio.sleep(SYNC_S)
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks.clear()

    async def _sync(self) -> None:
        async with self._uow() as tx:
            webhooks = await tx.webhooks.of_owner(None)
        for webhook in webhooks:
            self.start(webhook)
        for gone in set(self._tasks) - {w.id for w in webhooks}:
            await self.stop(gone)

    async def _run(self, webhook: Webhook) -> None:
        try:
            secret = await self._secret(webhook)
            if secret is None:
                return
            delivery = Delivery(webhook, secret, self._uow, self._send, self._roles_of, self._retry)
            messages = self._events.messages(webhook.id, partial(self._resume_after, webhook.id))
            async with contextlib.aclosing(messages):
                async for message in messages:
                    if not await delivery.handle(message):
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            # The task ends; the next sync starts it again.
            log.exception("webhook %s: delivery failed; restarting it in %.0fs", webhook.id, SYNC_S)

    async def _secret(self, webhook: Webhook) -> str | None:
        """The webhook's secret in clear; None if the webhook is gone or the key cannot open the
        secret (then it is not started again: that needs the operator to restore the key, which
        restarts the gateway)."""
        async with self._uow() as tx:
            current = await tx.webhooks.by_id(webhook.id)
        if current is None:
            return None
        try:
            return self._box.open(current.sealed_secret)
        except ValueError as exc:
            log.error("webhook %s: not sending: %s", webhook.id, exc)
            self._unreadable.add(webhook.id)
            async with self._uow() as tx:
                if (current := await tx.webhooks.by_id(webhook.id)) is not None:
                    await tx.webhooks.save(current.failed_attempt(str(exc)))
            return None

    async def _resume_after(self, webhook_id: str) -> int | None:
        """Where a new consumer starts: after the webhook's start or its last handled event."""
        async with self._uow() as tx:
            current = await tx.webhooks.by_id(webhook_id)
        return None if current is None else max(current.start_sequence, current.delivered_sequence)

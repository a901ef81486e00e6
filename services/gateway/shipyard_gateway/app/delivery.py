"""Sending one webhook's events: filter, sign, POST, retry with backoff, dead-letter.

Events come one at a time in stream order (the stream holds the next one until this one is
acknowledged), so a receiver sees them in order per subject. The record is updated before the
acknowledgement: an event redelivered after a crash in between is recognized and not sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.event_json import structured
from shipyard.kit.events import EventDecodeError
from shipyard_gateway.app.ports import RolesOf, Sender, StreamMessage, Units
from shipyard_gateway.domain.event_types import may_see
from shipyard_gateway.domain.webhooks import SIGNATURE_HEADER, DeadLetter, RetryPolicy, Webhook, sign

log = logging.getLogger(__name__)

# While waiting between attempts, tell the stream every so often that the event is still being
# worked on (well within its ack wait), so it is not handed to another gateway replica.
KEEPALIVE_S = 10.0
NO_ROLES: frozenset[str] = frozenset()


@dataclass
class Delivery:
    """One webhook's sender; ``handle`` takes each event of the stream in turn."""

    webhook: Webhook
    secret: str = field(repr=False)  # never in a log line
    uow: Units
    send: Sender
    roles_of: RolesOf
    retry: RetryPolicy
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Clock = utc_now

    async def handle(self, message: StreamMessage) -> bool:
        """Send the event if the webhook wants it, then acknowledge it. False once the webhook
        is deleted (the caller stops), True otherwise."""
        if await self._wanted(message) and not await self._deliver(message):
            return False
        await message.ack()
        return True

    async def _wanted(self, message: StreamMessage) -> bool:
        headers = message.headers
        ce_type = headers.get("ce-type", "")
        if not self.webhook.wants(ce_type, headers.get("ce-project", "")):
            return False
        # Roles are looked up only for the events some roles may not see, and each time: a user
        # who loses a role stops receiving them at once.
        return may_see(NO_ROLES, ce_type) or may_see(await self.roles_of(self.webhook.owner) or NO_ROLES,
                                                     ce_type)

    async def _deliver(self, message: StreamMessage) -> bool:
        """Send the event until the receiver takes it or the attempts run out; False if the webhook
        is gone."""
        try:
            request = structured(message.headers, message.data, message.sequence)
        except EventDecodeError as exc:
            log.warning("webhook %s: skipping unreadable event %d: %s", self.webhook.id,
                        message.sequence, exc)
            return True
        # The record as stored now: another gateway replica may have sent events since.
        async with self.uow() as tx:
            current = await tx.webhooks.by_id(self.webhook.id)
        if current is None:
            return False
        self.webhook = current
        if message.sequence <= current.delivered_sequence:
            return True  # handled before a crash, redelivered: sent already
        error = await self._send_with_retries(message, request.headers, request.body)
        if error is None:
            return await self._record(partial(Webhook.sent, sequence=message.sequence))
        headers = message.headers
        letter = DeadLetter(webhook_id=self.webhook.id, event_id=headers.get("ce-id", ""),
                            type=headers.get("ce-type", ""), subject=headers.get("ce-subject", ""),
                            sequence=message.sequence, attempts=self.retry.attempts, last_error=error,
                            time=self.clock())
        log.warning("webhook %s: event %d dead-lettered after %d attempts: %s", self.webhook.id,
                    message.sequence, self.retry.attempts, error)
        return await self._record(partial(Webhook.gave_up, sequence=message.sequence, error=error), letter)

    async def _send_with_retries(self, message: StreamMessage, content: Mapping[str, str],
                                 body: bytes) -> str | None:
        """None once the receiver accepted the event; the last error after the last attempt. The
        attempts a gateway made before it restarted count: it goes on after them (after the wait
        that was due), never past the policy's attempts."""
        headers = dict(content)
        error: str | None = None
        made = min(self.webhook.attempts_made(message.sequence), self.retry.attempts - 1)
        if made:
            await self._wait(message, self.retry.delay(made))
        for attempt in range(made + 1, self.retry.attempts + 1):
            await message.in_progress()
            # Signed afresh each time: the timestamp says when this attempt was made.
            headers[SIGNATURE_HEADER] = sign(self.secret, int(self.clock().timestamp()), body)
            error = await self.send(self.webhook.url, headers, body)
            if error is None:
                return None
            log.info("webhook %s: event %d, attempt %d of %d failed: %s", self.webhook.id,
                     message.sequence, attempt, self.retry.attempts, error)
            if attempt < self.retry.attempts:
                await self._record(partial(Webhook.failed_attempt, error=error, sequence=message.sequence))
                await self._wait(message, self.retry.delay(attempt))
        return error

    async def _wait(self, message: StreamMessage, seconds: float) -> None:
        while seconds > 0:
            step = min(seconds, KEEPALIVE_S)
            await self.sleep(step)
            await message.in_progress()
            seconds -= step

    async def _record(self, change: Callable[[Webhook], Webhook], letter: DeadLetter | None = None) -> bool:
        """Apply ``change`` to the stored webhook (and keep ``letter``); False if it is gone."""
        async with self.uow() as tx:
            current = await tx.webhooks.by_id(self.webhook.id)
            if current is None:
                return False
            updated = await tx.webhooks.save(change(current))
            if letter is not None:
                await tx.dead_letters.keep(letter)
        self.webhook = updated
        return True

"""WebhookService: the gateway answers it itself (local routes on both edges)."""

from __future__ import annotations

from google.protobuf.message import Message

from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.caller import Caller
from shipyard.kit.timestamps import timestamp
from shipyard_gateway.app.webhooks import Webhooks
from shipyard_gateway.domain.webhooks import DeadLetter, Webhook
from shipyard_gateway.entrypoints.api import Route

SERVICE = "/shipyard.gateway.v1.WebhookService"


def webhook_to_proto(webhook: Webhook) -> pb.Webhook:
    """The contract form of a webhook (every stored webhook has a secret; it is never returned)."""
    return pb.Webhook(id=webhook.id, name=webhook.name, url=webhook.url, types=list(webhook.types),
                      project=webhook.project, owner=webhook.owner,
                      create_time=timestamp(webhook.create_time), has_secret=True,
                      start_sequence=webhook.start_sequence,
                      delivered_sequence=webhook.delivered_sequence, delivered=webhook.delivered,
                      dead_letters=webhook.dead_letters, last_error=webhook.last_error)


def dead_letter_to_proto(letter: DeadLetter) -> pb.DeadLetter:
    """The contract form of a dead letter."""
    return pb.DeadLetter(webhook_id=letter.webhook_id, event_id=letter.event_id, type=letter.type,
                         subject=letter.subject, sequence=letter.sequence, attempts=letter.attempts,
                         last_error=letter.last_error, time=timestamp(letter.time))


def webhook_routes(webhooks: Webhooks) -> list[Route]:
    """Routes for WebhookService."""

    async def create(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.CreateWebhookRequest)
        w = request.webhook
        return webhook_to_proto(await webhooks.create(caller, w.name, w.url, list(w.types), w.project,
                                                      request.secret))

    async def get(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.GetWebhookRequest)
        return webhook_to_proto(await webhooks.get(caller, request.name))

    async def list_(caller: Caller, _: Message) -> Message:
        return pb.ListWebhooksResponse(webhooks=[webhook_to_proto(w) for w in await webhooks.list(caller)])

    async def delete(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.DeleteWebhookRequest)
        await webhooks.delete(caller, request.name)
        return pb.DeleteWebhookResponse()

    async def dead_letters(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.ListDeadLettersRequest)
        letters, token = await webhooks.dead_letters(caller, request.name, request.page_size,
                                                     request.page_token)
        return pb.ListDeadLettersResponse(dead_letters=[dead_letter_to_proto(d) for d in letters],
                                          next_page_token=token)

    return [
        Route(f"{SERVICE}/CreateWebhook", pb.CreateWebhookRequest, pb.Webhook, local=create),
        Route(f"{SERVICE}/GetWebhook", pb.GetWebhookRequest, pb.Webhook, local=get),
        Route(f"{SERVICE}/ListWebhooks", pb.ListWebhooksRequest, pb.ListWebhooksResponse, local=list_),
        Route(f"{SERVICE}/DeleteWebhook", pb.DeleteWebhookRequest, pb.DeleteWebhookResponse, local=delete),
        Route(f"{SERVICE}/ListDeadLetters", pb.ListDeadLettersRequest, pb.ListDeadLettersResponse,
              local=dead_letters),
    ]

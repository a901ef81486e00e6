"""Webhooks: events pushed to outside automation (the rules; delivery itself is app/adapters).

A webhook belongs to the user who made it: only they (or an operator) see it. Each event it
wants is POSTed as structured-mode CloudEvent JSON, signed with the webhook's secret (HMAC-SHA256
of ``<unix seconds>.<body>``), retried with exponential backoff and dead-lettered after the last
attempt. The secret is a value the receiver knows too; Shipyard keeps it encrypted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from shipyard.kit.addresses import check_host, parse_ip
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import check_name, check_text
from shipyard_gateway.domain.event_types import any_matches, check_type_pattern

URL_MAX = 2048
TYPES_MAX = 50
SECRET_MIN = 16
SECRET_MAX = 256
ERROR_MAX = 500
SIGNATURE_HEADER = "X-Shipyard-Signature"
ALLOW_PRIVATE_ENV = "SHIPYARD_WEBHOOK_ALLOW_PRIVATE"


@dataclass(frozen=True)
class WebhookSpec:
    """What a user asks for: checked, ready to store."""

    name: str
    url: str
    types: tuple[str, ...]
    project: str


@dataclass(frozen=True)
class Webhook:
    """A webhook and how far its delivery got."""

    id: str
    name: str
    url: str
    types: tuple[str, ...]
    project: str
    owner: str
    create_time: datetime
    start_sequence: int  # events after this stream sequence are sent
    delivered_sequence: int = 0  # the last event handled: sent or dead-lettered
    delivered: int = 0
    dead_letters: int = 0
    last_error: str = ""
    # The event being retried and how many of its attempts failed: kept, so that a gateway that
    # restarts mid-retries goes on counting instead of starting again (at most the policy's attempts).
    failing_sequence: int = 0
    failed_attempts: int = 0
    # The receiver's signing secret as the SecretBox sealed it: opened only to sign what is sent.
    sealed_secret: str = dataclasses.field(default="", repr=False)
    revision: int = 0  # the store's revision of the record read (0: never stored)

    def wants(self, ce_type: str, project: str) -> bool:
        """Whether an event of this type and project passes the webhook's filters."""
        return any_matches(self.types, ce_type) and (not self.project or self.project == project)

    def visible_to(self, caller: Caller) -> bool:
        """Webhooks are their owner's; operators see every one."""
        return caller.user == self.owner or caller.is_operator

    def sent(self, sequence: int) -> Webhook:
        """The event at ``sequence`` reached the receiver."""
        return replace(self, delivered_sequence=max(self.delivered_sequence, sequence),
                       delivered=self.delivered + 1, last_error="", failing_sequence=0, failed_attempts=0)

    def failed_attempt(self, error: str, sequence: int = 0) -> Webhook:
        """An attempt failed (to send the event at ``sequence``, counted; 0: nothing was sent);
        more may follow."""
        if not sequence:
            return replace(self, last_error=error[:ERROR_MAX])
        failed = self.failed_attempts + 1 if sequence == self.failing_sequence else 1
        return replace(self, last_error=error[:ERROR_MAX], failing_sequence=sequence, failed_attempts=failed)

    def attempts_made(self, sequence: int) -> int:
        """How many attempts to send the event at ``sequence`` failed already."""
        return self.failed_attempts if sequence == self.failing_sequence else 0

    def gave_up(self, sequence: int, error: str) -> Webhook:
        """The event at ``sequence`` went to the dead-letter list."""
        return replace(self, delivered_sequence=max(self.delivered_sequence, sequence),
                       dead_letters=self.dead_letters + 1, last_error=error[:ERROR_MAX],
                       failing_sequence=0, failed_attempts=0)


@dataclass(frozen=True)
class DeadLetter:
    """An event the receiver never accepted, kept so its owner can see what was lost."""

    webhook_id: str
    event_id: str
    type: str
    subject: str
    sequence: int
    attempts: int
    last_error: str
    time: datetime  # when it was given up
    revision: int = 0  # the store's revision (0: not stored yet)

    @property
    def id(self) -> str:
        """The letter's key: one per webhook and stream sequence, so an event is kept once."""
        return letter_id(self.webhook_id, self.sequence)


def letter_id(webhook_id: str, sequence: int) -> str:
    """The key of the webhook's dead letter of the event at ``sequence``."""
    return f"{webhook_id}-{sequence}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often an event is tried and how long to wait between tries (doubling, capped)."""

    attempts: int
    backoff_s: float
    backoff_max_s: float

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError(f"webhook retries: need attempts >= 1 and 0 <= backoff <= backoff max, "
                             f"got {self.attempts}, {self.backoff_s}, {self.backoff_max_s}")

    def delay(self, failed: int) -> float:
        """Seconds to wait after the ``failed``-th failed attempt (1, 2, …) before the next."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** (failed - 1)))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Shipyard-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

    The timestamp is signed with the body, so a receiver can refuse an old message replayed."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def check_webhook(name: str, url: str, types: Sequence[str], project: str,
                  allow_private: bool) -> WebhookSpec:
    """A valid webhook, or InvalidArgument naming the field and what is wrong."""
    check_name("webhook.name", name)
    if len(types) > TYPES_MAX:
        raise InvalidArgument("webhook.types", f"at most {TYPES_MAX} patterns (got {len(types)})")
    checked = tuple(dict.fromkeys(check_type_pattern("webhook.types", t) for t in types))
    if project:
        check_name("webhook.project", project)
    return WebhookSpec(name, check_url(url, allow_private), checked, project)


def check_secret(secret: str) -> str:
    """A valid signing secret; the errors never repeat it."""
    if not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise InvalidArgument("secret", f"must be {SECRET_MIN} to {SECRET_MAX} characters "
                                        f"(got {len(secret)})")
    if any(unicodedata.category(c) == "Cc" for c in secret):
        raise InvalidArgument("secret", "must not contain control characters")
    return secret


def check_url(url: str, allow_private: bool) -> str:
    """An http(s) URL with a host, no credentials, not aimed inside the platform: loopback, private
    and internal hosts need the operator's SHIPYARD_WEBHOOK_ALLOW_PRIVATE, the cloud metadata service
    and the like are never allowed (shipyard.kit.addresses). Names are checked again once resolved,
    when sending."""
    field = "webhook.url"
    if not url:
        raise InvalidArgument(field, "must not be empty")
    check_text(field, url, URL_MAX, multiline=False)
    if any(c.isspace() for c in url) or "\\" in url:
        raise InvalidArgument(field, "must not contain spaces or '\\' (percent-encode them)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise InvalidArgument(field, f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidArgument(field, f"must be an http:// or https:// URL "
                                     f"(got {parts.scheme + '://' if parts.scheme else 'no scheme'})")
    if "@" in parts.netloc:
        raise InvalidArgument(field, "must not contain credentials (user:password@): the signature "
                                     "tells the receiver the request comes from Shipyard")
    if not parts.hostname:
        raise InvalidArgument(field, "must name a host (http://HOST[:PORT]/PATH)")
    _check_plain_ipv4(f"{field}.host", parts.hostname)
    check_host(f"{field}.host", parts.hostname, allow_private, ALLOW_PRIVATE_ENV)
    return url


def _check_plain_ipv4(field: str, host: str) -> None:
    """Resolvers read 127.1, 2130706433 or 0x7f.1 as addresses; a webhook writes one in full."""
    ip = parse_ip(field, host)
    if ip is not None and ip.version == 4 and host != str(ip):
        raise InvalidArgument(field, f"{host!r} is not a valid IP address "
                                     "(write four numbers, like 192.0.2.7)")

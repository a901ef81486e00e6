"""A fake of the kit's credential client (:class:`shipyard.kit.clients.credentials.CredentialClient`)
for run-svc's unit tests: it holds the credentials a test adds and opens them as repo-svc opens
them for run-svc, with the same domain errors and messages."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.kit.caller import Caller
from shipyard.kit.clients.credentials import OpenedSecret
from shipyard.kit.errors import InvalidArgument, NotFound


@dataclass
class FakeCredentialClient:
    """Stored credentials by (owner, name); ``calls`` keeps (caller's user, owner, name) of each open."""

    stored: dict[tuple[str, str], OpenedSecret] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, owner: str, name: str, secret: str, type: str = "ssh-key", host: str = "",
            username: str = "") -> OpenedSecret:
        """Store ``owner``'s credential ``name``; what ``open`` returns for it."""
        opened = OpenedSecret(name, type, host, username, secret)
        self.stored[(owner, name)] = opened
        return opened

    async def open(self, caller: Caller, owner: str, name: str) -> OpenedSecret:
        """As the real client signing as run-svc: the credential, NotFound or InvalidArgument."""
        self.calls.append((caller.user, owner, name))
        if not owner:
            raise InvalidArgument("owner", "must not be empty")
        if not name:
            raise InvalidArgument("name", "must not be empty")
        found = self.stored.get((owner, name))
        if found is None:
            raise NotFound(f"credential {name!r} of {owner!r} not found")
        return found

    async def close(self) -> None:
        """Nothing to close."""

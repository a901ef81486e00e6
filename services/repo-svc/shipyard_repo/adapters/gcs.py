"""Google Cloud Storage over its JSON API, with a service-account key (OAuth 2.0 JWT bearer grant,
RFC 7523, signed RS256 with `cryptography`) — no Google client library needed.

The endpoints are parameters so that tests can stand in for Google with a local server. Requests
go through the imports' egress (shipyard.kit.egress) and follow no redirect.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shipyard.kit.egress import Egress, private_policy
from shipyard.kit.manifest import validate_path
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.domain.sources import GcsSource
from shipyard_repo.domain.sources.common import ALLOW_PRIVATE_ENV

STORAGE_URL = "https://storage.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
CHUNK = 1 << 20


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(key: dict[str, Any], audience: str, now: float) -> str:
    """The JWT a service account presents to Google's token endpoint (``audience``)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": key.get("private_key_id", "")}
    claims = {
        "iss": key["client_email"],
        "scope": SCOPE,
        "aud": audience,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise FetchFailed("the GCP key's private_key is not an RSA key")
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


class GcsFetch:
    """Every object under the bucket's prefix, at its path below the prefix."""

    def __init__(
        self, storage_url: str = STORAGE_URL, token_url: str = TOKEN_URL, egress: Egress | None = None
    ) -> None:
        # Fixed endpoints: the key's own token_uri is not followed (it could point anywhere).
        self._storage = storage_url.rstrip("/")
        self._token_url = token_url
        self._egress = egress or Egress(private_policy(False, ALLOW_PRIVATE_ENV))

    async def fetch(self, source: GcsSource, into: Path, secret: str | None) -> None:
        async with self._egress.session(aiohttp.ClientTimeout(total=None, sock_read=300)) as session:
            headers = {"Authorization": f"Bearer {await self._token(session, secret)}"} if secret else {}
            base = f"{source.prefix.strip('/')}/" if source.prefix else ""
            for name in await self._names(session, headers, source.bucket, base):
                relative = name[len(base) :]
                if not relative or name.endswith("/"):
                    continue
                try:
                    target = into / validate_path(relative)
                except ValueError:
                    raise FetchFailed(f"object {name!r} cannot be a file of the dataset (its path)") from None
                await self._download(session, headers, source.bucket, name, target)

    async def _token(self, session: aiohttp.ClientSession, secret: str) -> str:
        try:
            key = json.loads(secret)
            assertion = signed_assertion(key, self._token_url, time.time())
        except (ValueError, KeyError) as exc:
            raise FetchFailed(f"the GCP service-account key is not usable: {exc}") from None
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        async with session.post(self._token_url, data=form, allow_redirects=False) as reply:
            try:
                body = await reply.json(content_type=None)
            except ValueError:
                body = {}
            if reply.status != 200 or "access_token" not in body:
                raise FetchFailed(f"GCP token endpoint answered HTTP {reply.status}: {body.get('error', '')}")
            return str(body["access_token"])

    async def _names(
        self, session: aiohttp.ClientSession, headers: dict[str, str], bucket: str, prefix: str
    ) -> list[str]:
        names: list[str] = []
        token = ""
        while True:
            params = {"prefix": prefix, "fields": "items(name),nextPageToken"}
            if token:
                params["pageToken"] = token
            async with session.get(
                f"{self._storage}/storage/v1/b/{quote(bucket, safe='')}/o",
                params=params,
                headers=headers,
                allow_redirects=False,
            ) as reply:
                if reply.status != 200:
                    raise FetchFailed(f"GCS: listing gs://{bucket}/{prefix} answered HTTP {reply.status}")
                body = await reply.json(content_type=None)
            names += [item["name"] for item in body.get("items", [])]
            token = body.get("nextPageToken", "")
            if not token:
                return names

    async def _download(
        self, session: aiohttp.ClientSession, headers: dict[str, str], bucket: str, name: str, target: Path
    ) -> None:
        url = f"{self._storage}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
        async with session.get(url, params={"alt": "media"}, headers=headers, allow_redirects=False) as reply:
            if reply.status != 200:
                raise FetchFailed(f"GCS: reading gs://{bucket}/{name} answered HTTP {reply.status}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                async for chunk in reply.content.iter_chunked(CHUNK):
                    out.write(chunk)

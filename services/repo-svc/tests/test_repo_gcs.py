"""GCS imports against a stand-in for Google's token endpoint and JSON API on loopback: the JWT
is checked with the service account's public key, listings are paged, objects read as media."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from shipyard_repo.adapters.fetchers import source_egress
from shipyard_repo.adapters.gcs import GcsFetch
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.domain.sources import GcsSource

LOOPBACK = source_egress(allow_private=True)  # the stand-in for Google listens on 127.0.0.1

OBJECTS = {
    "mnist/train/a.bin": b"a" * 10,
    "mnist/train/b.bin": b"b",
    "mnist/labels.csv": b"1,2",
    "other/x": b"x",
}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def google(key: rsa.RSAPrivateKey) -> AsyncIterator[str]:
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        header, claims, signature = str(form["assertion"]).split(".")
        try:
            key.public_key().verify(
                _unb64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return web.json_response({"error": "invalid_grant"}, status=400)
        assert json.loads(_unb64(claims))["iss"] == "importer@project.iam.gserviceaccount.com"
        return web.json_response({"access_token": "ya29.test", "expires_in": 3600})

    async def listing(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer ya29.test"
        names = sorted(n for n in OBJECTS if n.startswith(request.query["prefix"]))
        page = int(request.query.get("pageToken", "0"))
        body: dict[str, object] = {"items": [{"name": n} for n in names[page : page + 2]]}
        if page + 2 < len(names):
            body["nextPageToken"] = str(page + 2)
        return web.json_response(body)

    async def media(request: web.Request) -> web.Response:
        assert request.query["alt"] == "media"
        return web.Response(body=OBJECTS[request.match_info["name"]])

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/storage/v1/b/{bucket}/o", listing)
    app.router.add_get("/storage/v1/b/{bucket}/o/{name:.+}", media)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _service_account(key: rsa.RSAPrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "client_email": "importer@project.iam.gserviceaccount.com",
            "private_key": pem,
            "private_key_id": "k1",
            "token_uri": "https://evil.example/token",
        }
    )


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_a_prefix_is_imported_with_a_service_account(
    google: str, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    fetch = GcsFetch(storage_url=google, token_url=f"{google}/token", egress=LOOPBACK)
    await fetch.fetch(GcsSource("data", prefix="mnist"), tmp_path, _service_account(key))
    found = _files(tmp_path)
    assert found == {"train/a.bin": b"a" * 10, "train/b.bin": b"b", "labels.csv": b"1,2"}


async def test_a_wrong_key_is_refused_by_the_token_endpoint(google: str, tmp_path: Path) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fetch = GcsFetch(storage_url=google, token_url=f"{google}/token", egress=LOOPBACK)
    with pytest.raises(FetchFailed, match="token endpoint answered HTTP 400: invalid_grant"):
        await fetch.fetch(GcsSource("data", prefix="mnist"), tmp_path, _service_account(other))


async def test_an_unusable_key_says_so(google: str, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match="service-account key is not usable"):
        await GcsFetch(storage_url=google, token_url=f"{google}/token", egress=LOOPBACK).fetch(
            GcsSource("data"), tmp_path, "{}"
        )

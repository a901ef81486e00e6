"""Fetching object store sources: every object under an S3 bucket's prefix (the MinIO SDK),
following no redirect. (GCS has its own client: ``shipyard_repo.adapters.gcs``.)
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from shipyard.kit.egress import Egress
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.domain.sources import S3Source


class S3Fetch:
    """Every object under the bucket's prefix, at its path below the prefix."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    async def fetch(self, source: S3Source, into: Path, secret: str | None, username: str) -> None:
        endpoint = urlsplit(source.endpoint) if source.endpoint else None
        host = endpoint.netloc if endpoint else f"s3.{source.region or 'us-east-1'}.amazonaws.com"
        client = Minio(
            host,
            access_key=username or None,
            secret_key=secret,
            secure=endpoint is None or endpoint.scheme == "https",
            region=source.region or None,
            http_client=self._http_client(),
        )
        await asyncio.to_thread(_download_prefix, client, source.bucket, source.prefix, into)

    def _http_client(self) -> urllib3.PoolManager:
        """MinIO's own client settings, connecting through the egress and following no redirect."""
        seconds = 300
        return self._egress.pool_manager(
            timeout=urllib3.Timeout(connect=seconds, read=seconds),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(
                total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], redirect=False
            ),
        )


def _download_prefix(client: Minio, bucket: str, prefix: str, into: Path) -> None:
    base = f"{prefix.strip('/')}/" if prefix else ""
    try:
        for item in client.list_objects(bucket, prefix=base, recursive=True):
            name = str(item.object_name)
            relative = name[len(base) :]
            if not relative or name.endswith("/"):
                continue
            target = (into / relative).resolve()
            if not target.is_relative_to(into.resolve()):
                raise FetchFailed(f"object {name!r} would land outside the dataset")
            target.parent.mkdir(parents=True, exist_ok=True)
            client.fget_object(bucket, name, str(target))
    except S3Error as exc:
        raise FetchFailed(f"S3: {exc.code}: {exc.message}") from None
    except ServerError as exc:
        raise FetchFailed(f"S3: the endpoint answered HTTP {exc.status_code}") from None
    except InvalidResponseError:
        # Not an S3 document: say so, never what the server sent (it may be any service).
        raise FetchFailed("S3: the endpoint's answer is not an S3 answer") from None
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(f"S3: {_unreachable(exc)}") from None


def _unreachable(error: urllib3.exceptions.HTTPError) -> str:
    """Why the endpoint could not be asked, in fixed words: urllib3's own messages may quote what
    answered (a bad status line is another service's banner)."""
    reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "cannot resolve the endpoint's host"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return "the endpoint did not answer in time"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return "cannot connect to the endpoint"
    if isinstance(reason, urllib3.exceptions.SSLError):
        return "TLS error"
    return "the endpoint's answer is not an HTTP response"

"""URLs in sources (git, S3 and Redshift endpoints, public files): parsed as urllib parses them,
with no secret embedded and a host that passes the address rule; and the same URLs stripped of
their user information for showing."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

from shipyard.kit.errors import InvalidArgument

from ..names import check_text, check_url
from .common import check_host, required

URL_MAX = 2048

_TOKEN_PREFIXES = (
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gldt-",
    "glrt-",
    "glptt-",
    "atbb",
    "atctt",
)


def split_url(field: str, url: str) -> SplitResult:
    """``url`` parsed; whatever urllib would reject (a bad port, a broken bracket) is refused."""
    check_text(field, url, URL_MAX, multiline=False)
    if any(c.isspace() for c in url):
        raise InvalidArgument(field, "must not contain spaces (percent-encode them)")
    # Parsers disagree on '\\' (browsers read it as '/'), which hides the real host.
    if "\\" in url:
        raise InvalidArgument(field, "must not contain '\\'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidArgument(field, f"is not a valid URL ({e})") from None
    if port == 0:
        raise InvalidArgument(field, "port must be between 1 and 65535")
    return parts


def _looks_like_token(user: str) -> bool:
    """A user name that is really an access token (GitHub and GitLab accept them there)."""
    return user.lower().startswith(_TOKEN_PREFIXES) or len(user) >= 32


def _check_userinfo(field: str, parts: SplitResult, credential_field: str | None, user_ok: bool) -> None:
    if "@" not in parts.netloc:
        return
    store = (
        f"; store it as a credential and name it in {credential_field}"
        if credential_field
        else "; the URL must work without one"
    )
    user = parts.username or ""
    if parts.password is not None:
        raise InvalidArgument(field, f"must not embed a password{store}")
    if _looks_like_token(unquote(user)):
        raise InvalidArgument(field, f"must not embed an access token{store}")
    if not user_ok:
        raise InvalidArgument(field, f"must not embed a user name{store}")


def check_web_url(
    field: str,
    url: str,
    allow_private: bool,
    *,
    credential_field: str | None,
    user_ok: bool = False,
    endpoint: bool = False,
) -> SplitResult:
    """An http(s) URL whose host passes ``check_host``; an endpoint has no path, query or fragment."""
    required(field, url)
    parts = split_url(field, url)
    check_url(field, url)
    _check_userinfo(field, parts, credential_field, user_ok)
    if endpoint and (parts.path not in ("", "/") or parts.query or parts.fragment):
        raise InvalidArgument(
            field, "must be only scheme, host and port (e.g. https://minio.example.com:9000)"
        )
    check_host(f"{field}.host", parts.hostname or "", allow_private)
    return parts


def strip_userinfo(url: str) -> str:
    """``url`` without its user name and password."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1", url)


def strip_password(url: str) -> str:
    """``url`` without its password; the user name stays."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#:@]*):[^/?#]*@", r"\1@", url)

"""Stored credentials: what a source needs to reach a private git repo, bucket or database.

The secret itself never leaves repo-svc: it is encrypted at rest (shipyard.kit.secrets) and no
API answer, event or log line carries it; a keyed fingerprint tells two secrets apart.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime

import yaml
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from shipyard.kit.errors import InvalidArgument

from .names import check_name, check_text

SECRET_MAX = 64 * 1024
USERNAME_MAX = 256
HOST_MAX = 255


class CredentialType(enum.Enum):
    """What kind of secret a credential holds."""

    PASSWORD = "password"
    TOKEN = "token"
    SSH_KEY = "ssh-key"
    ACCESS_KEY = "access-key"
    GCP_KEY = "gcp-key"
    KUBECONFIG = "kubeconfig"


@dataclass(frozen=True)
class Credential:
    """A credential as listed: everything but the secret."""

    name: str
    type: CredentialType
    host: str
    username: str
    owner: str
    fingerprint: str
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class CredentialFields:
    """What a user gives when saving a credential."""

    name: str
    type: CredentialType
    host: str = ""
    username: str = ""

    def checked(self, secret: str) -> CredentialFields:
        """These fields, or InvalidArgument naming the first bad one (the secret included)."""
        check_name("credential.name", self.name)
        check_text("credential.host", self.host, HOST_MAX, multiline=False)
        if any(c.isspace() or c in "/@" for c in self.host):
            raise InvalidArgument("credential.host", "a host name (and :port), without scheme, user or path")
        check_text("credential.username", self.username, USERNAME_MAX, multiline=False)
        check_secret(self.type, secret, self.username)
        return self


def check_secret(kind: CredentialType, secret: str, username: str) -> None:
    """The secret has the form its type needs (without ever echoing it in a message)."""
    if not secret:
        raise InvalidArgument("secret", "must not be empty")
    if len(secret) > SECRET_MAX:
        raise InvalidArgument("secret", f"must be at most {SECRET_MAX // 1024} KiB")
    if kind in (CredentialType.PASSWORD, CredentialType.ACCESS_KEY) and not username:
        raise InvalidArgument("credential.username", f"a {kind.value} credential needs a username")
    if kind is CredentialType.SSH_KEY:
        _check_private_key(secret)
    elif kind is CredentialType.GCP_KEY:
        _check_gcp_key(secret)
    elif kind is CredentialType.KUBECONFIG:
        _check_kubeconfig(secret)
    elif any(c in secret for c in "\r\n\x00"):
        raise InvalidArgument("secret", "must be a single line")


def _check_private_key(secret: str) -> None:
    """PEM (PKCS#1 "RSA PRIVATE KEY", PKCS#8, EC) or OpenSSH format, unencrypted."""
    data = secret.strip().encode() + b"\n"
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key)
    for load in loaders:
        try:
            load(data, password=None)
            return
        except TypeError:
            raise InvalidArgument(
                "secret",
                "the private key is protected by a passphrase; store a key without one (runs cannot type it)",
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            continue
    raise InvalidArgument("secret", "is not a private key in PEM, OpenSSH or RSA format")


def _check_gcp_key(secret: str) -> None:
    try:
        key = json.loads(secret)
    except ValueError:
        key = None
    if not isinstance(key, dict) or key.get("type") != "service_account" or "private_key" not in key:
        raise InvalidArgument(
            "secret", "is not a GCP service-account key (JSON with type service_account and private_key)"
        )


def _check_kubeconfig(secret: str) -> None:
    """A kubeconfig as kubectl writes it: YAML (or JSON) with its clusters, users and contexts."""
    try:
        config = yaml.safe_load(secret)
    except yaml.YAMLError:
        config = None
    if not isinstance(config, dict) or not all(isinstance(config.get(part), list) and config[part]
                                               for part in ("clusters", "users", "contexts")):
        raise InvalidArgument("secret", "is not a kubeconfig (YAML with clusters, users and contexts, as "
                                        "kubectl config view --raw --flatten writes it)")

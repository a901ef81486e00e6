"""The fetch adapters' safety: secrets reach git only through askpass or a 0600 key file, and
hosts are checked again after DNS."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from shipyard_repo.adapters.fetchers import _git_env, _git_host, check_resolved
from shipyard_repo.app.imports import FetchFailed

SECRET = "ghp_very-secret-token"


def test_https_secrets_go_through_askpass_never_the_command_line(tmp_path: Path) -> None:
    env = _git_env(tmp_path, "https://github.com/acme/p.git", SECRET, "alice")
    askpass = env["GIT_ASKPASS"]
    assert os.stat(askpass).st_mode & 0o777 == 0o700
    assert SECRET not in Path(askpass).read_text()  # the script reads it from its environment

    def answer(prompt: str) -> str:
        return subprocess.run(
            [askpass, prompt], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert answer("Username for 'https://github.com': ") == "alice"
    assert answer("Password for 'https://alice@github.com': ") == SECRET
    assert env["GIT_TERMINAL_PROMPT"] == "0"


def test_a_token_without_a_username_uses_the_token_convention(tmp_path: Path) -> None:
    env = _git_env(tmp_path, "https://github.com/acme/p.git", SECRET, "")
    assert env["SHIPYARD_GIT_USER"] == "x-access-token"


def test_ssh_keys_go_to_a_private_file_named_in_the_ssh_command(tmp_path: Path) -> None:
    env = _git_env(tmp_path, "git@github.com:acme/p.git", "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n", "")
    key = tmp_path / "id_key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert f"-i {key}" in env["GIT_SSH_COMMAND"] and "BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert "PRIVATE KEY" not in env["GIT_SSH_COMMAND"]


def test_no_secret_no_askpass(tmp_path: Path) -> None:
    env = _git_env(tmp_path, "https://github.com/acme/p.git", None, "")
    assert "GIT_ASKPASS" not in env and "GIT_SSH_COMMAND" not in env


def _resolving_to(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    async def getaddrinfo(self: Any, host: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)


async def test_a_public_name_that_resolves_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, "127.0.0.1")
    refused = r"data\.example\.org resolves to 127\.0\.0\.1: 127\.0\.0\.1 is a loopback"
    with pytest.raises(FetchFailed, match=refused):
        await check_resolved("data.example.org", allow_private=False)
    await check_resolved("data.example.org", allow_private=True)


async def test_a_name_that_resolves_to_the_metadata_service_is_refused_even_when_private_is_allowed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, "169.254.169.254")
    refused = r"data\.example\.org resolves to 169\.254\.169\.254: .* cloud metadata service's address"
    for allow_private in (False, True):
        with pytest.raises(FetchFailed, match=refused):
            await check_resolved("data.example.org", allow_private=allow_private)


async def test_a_name_that_resolves_to_a_public_address_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, "93.184.216.34")
    await check_resolved("data.example.org", allow_private=False)


@pytest.mark.parametrize(("url", "host"), [
    ("https://Git.Example.com:8443/o/r.git", "git.example.com"),
    ("ssh://git@[2001:db8::1]:22/o/r.git", "2001:db8::1"),
    ("git@github.com:o/r.git", "github.com"),
    ("git@[2001:db8::1]:o/r.git", "2001:db8::1"),
    ("file:///srv/git/r.git", ""),
])
def test_the_git_host_checked_after_dns(url: str, host: str) -> None:
    assert _git_host(url) == host

"""Signed caller assertions (shipyard.kit.assertions): what a service believes, and what it refuses."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

import pytest

from shipyard.kit.assertions import (
    ASSERTION_KEY,
    CACHE_MAX,
    LIFETIME_S,
    SKEW_S,
    CallerAssertions,
    ensure_key_file,
    load_internal_key,
    new_key,
    parse_key,
)
from shipyard.kit.caller import Caller
from shipyard.kit.errors import Unauthenticated

ALICE = Caller("alice", frozenset({"data-scientist", "ml-engineer"}))
KEY = new_key()


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pair(clock: Clock | None = None, key: bytes = KEY) -> tuple[CallerAssertions, CallerAssertions]:
    """The gateway (signer) and repo-svc (verifier), sharing a key and a clock."""
    clock = clock or Clock()
    return CallerAssertions(key, "gateway", clock=clock), CallerAssertions(key, "repo", clock=clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_a_signed_caller_is_verified_by_its_audience() -> None:
    gateway, repo = pair()
    found = repo.verify(gateway.sign(ALICE, "repo"))
    assert found.caller == ALICE
    assert (found.issuer, found.audience) == ("gateway", "repo")
    assert found.expires_at - found.issued_at == LIFETIME_S


def test_the_payload_binds_user_roles_issuer_audience_and_times() -> None:
    gateway, _ = pair(Clock(1000.0))
    assert claims_of(gateway.sign(ALICE, "repo")) == {
        "sub": "alice", "roles": ["data-scientist", "ml-engineer"], "iss": "gateway", "aud": "repo",
        "iat": 1000, "exp": 1000 + LIFETIME_S}


def test_metadata_is_one_entry() -> None:
    gateway, repo = pair()
    [(key, value)] = gateway.metadata(ALICE, "repo")
    assert key == ASSERTION_KEY == "x-shipyard-caller"
    assert repo.verify(value).caller == ALICE


@pytest.mark.parametrize("token", [None, ""])
def test_no_assertion_is_refused(token: str | None) -> None:
    _, repo = pair()
    with pytest.raises(Unauthenticated, match="no caller assertion"):
        repo.verify(token)


def test_an_assertion_for_another_service_is_refused() -> None:
    gateway, repo = pair()
    with pytest.raises(Unauthenticated, match="for 'lineage', not 'repo'"):
        repo.verify(gateway.sign(ALICE, "lineage"))


def test_an_expired_assertion_is_refused_after_the_skew() -> None:
    clock = Clock()
    gateway, repo = pair(clock)
    token = gateway.sign(ALICE, "repo")
    clock.now += LIFETIME_S + SKEW_S - 1
    assert repo.verify(token).caller == ALICE  # within the tolerated skew
    clock.now += 1
    with pytest.raises(Unauthenticated, match="expired"):
        repo.verify(token)


def test_expiry_holds_for_an_assertion_verified_before() -> None:
    """The verify cache never outlives the assertion."""
    clock = Clock()
    gateway, repo = pair(clock)
    token = gateway.sign(ALICE, "repo")
    repo.verify(token)
    clock.now += LIFETIME_S + SKEW_S
    with pytest.raises(Unauthenticated, match="expired"):
        repo.verify(token)


def test_an_assertion_from_the_future_is_refused() -> None:
    clock = Clock()
    gateway = CallerAssertions(KEY, "gateway", clock=Clock(clock.now + SKEW_S + 2))
    repo = CallerAssertions(KEY, "repo", clock=clock)
    with pytest.raises(Unauthenticated, match="not valid yet"):
        repo.verify(gateway.sign(ALICE, "repo"))


def test_a_wrong_key_is_refused() -> None:
    gateway = CallerAssertions(new_key(), "gateway")
    _, repo = pair()
    with pytest.raises(Unauthenticated, match="signature is not valid"):
        repo.verify(gateway.sign(ALICE, "repo"))


def test_a_tampered_payload_is_refused() -> None:
    gateway, repo = pair()
    payload, mac = gateway.sign(ALICE, "repo").split(".")
    claims = claims_of(payload + "." + mac)
    claims["roles"] = ["operator"]
    forged = b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    with pytest.raises(Unauthenticated, match="signature is not valid"):
        repo.verify(f"{forged}.{mac}")


@pytest.mark.parametrize("token", ["nodot", "a.b.c", "!!!.###", ".", "eyJ9.",
                                   f"{b64(b'x')}.{b64(b'y' * 32)}"])
def test_garbage_is_refused(token: str) -> None:
    _, repo = pair()
    with pytest.raises(Unauthenticated):
        repo.verify(token)


def test_well_signed_nonsense_is_malformed() -> None:
    """Even with the key, a payload must say who calls."""
    import hashlib
    import hmac
    _, repo = pair()
    payload = b'{"sub": "x"}'
    token = f"{b64(payload)}.{b64(hmac.new(KEY, payload, hashlib.sha256).digest())}"
    with pytest.raises(Unauthenticated, match="malformed"):
        repo.verify(token)


def test_signing_is_reused_for_half_a_lifetime_then_renewed() -> None:
    clock = Clock()
    gateway, repo = pair(clock)
    first = gateway.sign(ALICE, "repo")
    clock.now += LIFETIME_S / 2 - 1
    assert gateway.sign(ALICE, "repo") == first
    assert gateway.sign(ALICE, "run") != first
    assert gateway.sign(Caller("alice", frozenset({"operator"})), "repo") != first
    clock.now += 2
    renewed = gateway.sign(ALICE, "repo")
    assert renewed != first
    assert repo.verify(renewed).caller == ALICE


def test_the_caches_stay_bounded() -> None:
    gateway, repo = pair()
    for n in range(CACHE_MAX + 10):
        repo.verify(gateway.sign(Caller(f"user-{n}", frozenset()), "repo"))
    assert len(gateway._signed) <= CACHE_MAX
    assert len(repo._verified) <= CACHE_MAX


@pytest.mark.parametrize("encode", [bytes.hex, lambda k: base64.b64encode(k).decode(),
                                    lambda k: base64.urlsafe_b64encode(k).decode(),
                                    lambda k: base64.urlsafe_b64encode(k).decode().rstrip("=") + "\n"])
def test_the_key_reads_as_hex_or_base64(encode: object) -> None:
    assert callable(encode)
    assert parse_key(encode(KEY)) == KEY


@pytest.mark.parametrize("text", ["", "short", "00" * 31, base64.b64encode(b"k" * 16).decode(), "zz" * 32])
def test_a_bad_key_is_refused_saying_what_a_key_is(text: str) -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        parse_key(text)


def test_the_setting_wins_over_the_file(tmp_path: Path) -> None:
    ensure_key_file(tmp_path / "internal.key")
    assert load_internal_key(KEY.hex(), tmp_path / "internal.key") == KEY


def test_no_key_is_an_error_naming_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHIPYARD_INTERNAL_KEY"):
        load_internal_key("", tmp_path / "internal.key")


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "internal.key"
    ensure_key_file(path)
    key = load_internal_key("", path)
    ensure_key_file(path)
    assert load_internal_key("", path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["internal.key"]


def test_racing_creators_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "internal.key"
    keys: list[bytes] = []

    def make() -> None:
        ensure_key_file(path)
        keys.append(load_internal_key("", path))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "internal.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key\n")
    os.close(fd)
    with pytest.raises(ValueError, match="32 random bytes"):
        ensure_key_file(path)


def test_a_run_scoped_caller_keeps_its_run_and_names_the_signing_service() -> None:
    gateway, repo = pair()
    scoped = Caller("alice", frozenset({"data-scientist"}), run_id="abc123")
    found = repo.verify(gateway.sign(scoped, "repo"))
    assert found.caller == scoped and found.caller.run_id == "abc123"
    assert found.caller.via == "gateway"
    assert repo.verify(gateway.sign(ALICE, "repo")).caller.run_id == ""

"""The NATS users' configuration that `shipyard up` writes: passwords, hashes, permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from Crypto.Protocol.KDF import bcrypt_check

from shipyard.kit.bus_access import SERVICE_USERS, USERS
from shipyard.local.nats_config import (
    FromEnvironment,
    UnreadablePasswords,
    deploy_config,
    load_passwords,
    password_variable,
    render,
    write_private,
)
from shipyard.local.supervisor import StackConfig, Supervisor


def test_passwords_are_made_once_strong_and_private(tmp_path: Path) -> None:
    path = tmp_path / "nats-passwords.json"
    made = load_passwords(path)
    assert set(made) == set(USERS)
    assert len(set(made.values())) == len(USERS)
    # token_urlsafe: 6 bits a character; at least 128 bits each.
    assert all(len(password) * 6 >= 128 for password in made.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_passwords(path) == made  # a restart keeps them


def test_a_user_missing_from_the_file_gets_a_password_and_the_others_stay(tmp_path: Path) -> None:
    path = tmp_path / "nats-passwords.json"
    made = load_passwords(path)
    write_private(path, json.dumps({k: v for k, v in made.items() if k != "lineage-svc"}))
    again = load_passwords(path)
    assert again["lineage-svc"] and again["lineage-svc"] != made["lineage-svc"]
    assert {k: v for k, v in again.items() if k != "lineage-svc"} == {k: v for k, v in made.items()
                                                                   if k != "lineage-svc"}
    assert json.loads(path.read_text()) == again


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"repo-svc": ""}', '{"repo-svc": 7}'])
def test_an_unreadable_password_file_is_named_not_replaced(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nats-passwords.json"
    path.write_text(text)
    with pytest.raises(UnreadablePasswords, match=r"nats-passwords\.json"):
        load_passwords(path)
    assert path.read_text() == text


def test_the_configuration_holds_hashes_never_the_passwords(tmp_path: Path) -> None:
    passwords = load_passwords(tmp_path / "p.json")
    text = render(passwords)
    assert "no_auth_user" not in text
    for user, password in passwords.items():
        assert password not in text
        after = text.split(f'user: "{user}"', 1)[1]
        hashed = after.split('password: "', 1)[1].split('"', 1)[0]
        assert hashed.startswith("$2a$")
        bcrypt_check(password, hashed)  # raises when it does not match


def test_deploy_passwords_come_from_the_servers_environment() -> None:
    text = deploy_config()
    assert "password: $NATS_REPO_SVC_PASSWORD\n" in text
    assert "password: $NATS_OBSERVER_PASSWORD\n" in text
    assert render({user: FromEnvironment(password_variable(user)) for user in USERS}) == text


def test_every_user_needs_a_password() -> None:
    with pytest.raises(ValueError, match="gateway, observer"):
        render({user: "x" * 32 for user in ("repo-svc", "run-svc", "serving-svc", "lineage-svc")})


def test_up_gives_each_process_its_own_bus_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_NATS_USER", raising=False)
    monkeypatch.delenv("SHIPYARD_NATS_PASSWORD", raising=False)
    supervisor = Supervisor(StackConfig(data_dir=tmp_path / "data"))
    supervisor.data.prepare()
    children = {child.name: child for child in supervisor._plan()}
    passwords = json.loads(supervisor.data.nats_passwords.read_text())
    for name, child in children.items():
        if name == "nats":
            assert "SHIPYARD_NATS_PASSWORD" not in child.env
            config = Path(child.argv[child.argv.index("-c") + 1])
            assert config == supervisor.data.nats_config
            assert stat.S_IMODE(config.stat().st_mode) == 0o600
            assert config.read_text().count("password: \"$2a$") == len(USERS)
            continue
        assert child.env["SHIPYARD_NATS_USER"] == name  # its one name
        assert child.env["SHIPYARD_NATS_PASSWORD"] == passwords[name]
    assert set(children) - {"nats"} == set(SERVICE_USERS)

"""deploy/'s NATS server takes the bus users of shipyard.kit.bus_access, and each service gets its
own user and password (and no other's), from the Secret."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("yaml", reason="PyYAML is not installed (it is a dev extra)")

from shipyard.kit.bus_access import SERVICE_USERS, USERS
from shipyard.local.nats_config import deploy_config, password_variable
from tests.deploy.kustomize import find, pod_spec, render
from tests.deploy.test_manifests import VARIANTS, effective_env, main_container, mount_for

CONFIG_MAP = "shipyard-nats-users"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_nats_server_has_the_tables_users_and_their_passwords(variant: str) -> None:
    docs = render(VARIANTS[variant])
    users = find(docs, "ConfigMap", CONFIG_MAP)
    assert users is not None
    assert users["data"]["nats.conf"] == deploy_config(), (
        "deploy/kustomize/base/nats-users.yaml is not what shipyard.kit.bus_access makes: regenerate it")
    nats = find(docs, "StatefulSet", "shipyard-nats")
    assert nats is not None
    (container,) = pod_spec(nats)["containers"]
    args = container["args"]
    config = args[args.index("-c") + 1]
    volume = mount_for(docs, nats, container, config)
    assert volume is not None and volume["configMap"]["name"] == CONFIG_MAP
    assert config.endswith("/nats.conf")
    env = {var["name"]: var["valueFrom"]["secretKeyRef"]["key"] for var in container["env"]
           if "secretKeyRef" in var.get("valueFrom", {})}
    named = set(re.findall(r"password: \$(\w+)", deploy_config()))
    assert named == {password_variable(user) for user in USERS} <= set(env)
    assert len({env[name] for name in named}) == len(USERS), "two users share a Secret key"
    effective_env(docs, container, "shipyard-nats")  # every Secret key it names exists


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("service", SERVICE_USERS)
def test_each_service_gets_its_own_bus_user_alone(variant: str, service: str) -> None:
    docs = render(VARIANTS[variant])
    container = main_container(docs, service)
    env = effective_env(docs, container, service)
    assert env["SHIPYARD_NATS_USER"] == service
    (password,) = [var["valueFrom"]["secretKeyRef"]["key"] for var in container["env"]
                   if var["name"] == "SHIPYARD_NATS_PASSWORD"]
    nats = find(docs, "StatefulSet", "shipyard-nats")
    assert nats is not None
    (server,) = pod_spec(nats)["containers"]
    server_key = next(var["valueFrom"]["secretKeyRef"]["key"] for var in server["env"]
                      if var["name"] == password_variable(service))
    assert password == server_key

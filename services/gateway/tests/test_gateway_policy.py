"""The role policy (domain/policy.py) and the bearer-token edge of the public API."""

from __future__ import annotations

import pytest
from gateway_fakes import gateway_world
from shipyard_gateway.bootstrap import FORWARDED
from shipyard_gateway.domain.identity import ROLES
from shipyard_gateway.domain.policy import POLICY, authorize
from shipyard_gateway.entrypoints.api import credential

from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied, Unauthenticated

PROJECTS = "/shipyard.repo.v1.ProjectService"
IDENTITY = "/shipyard.gateway.v1.IdentityService"
# Methods of forwarded services that only the platform's own processes call: no policy entry, so
# the gateway refuses them to every user (the contracts say "Internal").
INTERNAL = ["/shipyard.repo.v1.RepoService/CheckVersionWrite", "/shipyard.repo.v1.RepoService/ReserveUpload",
            "/shipyard.repo.v1.CredentialService/OpenCredential",
            "/shipyard.run.v1.RunService/VerifyRunToken",
            "/shipyard.serving.v1.ServingService/ListClusterEndpoints"]


def as_role(*roles: str) -> Caller:
    return Caller("someone", frozenset(roles))


def test_production_engineer_may_not_create_projects() -> None:
    with pytest.raises(PermissionDenied, match="CreateProject"):
        authorize(f"{PROJECTS}/CreateProject", as_role("production-engineer"))


@pytest.mark.parametrize("role", ["operator", "data-scientist", "ml-engineer"])
def test_developers_may_create_projects(role: str) -> None:
    authorize(f"{PROJECTS}/CreateProject", as_role(role))


@pytest.mark.parametrize("method", ["CreateUser", "ListUsers"])
@pytest.mark.parametrize("role", ["data-scientist", "ml-engineer", "production-engineer"])
def test_only_operators_manage_users(method: str, role: str) -> None:
    with pytest.raises(PermissionDenied):
        authorize(f"{IDENTITY}/{method}", as_role(role))
    authorize(f"{IDENTITY}/{method}", as_role("operator"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", [f"{PROJECTS}/ListProjects", f"{PROJECTS}/GetProject",
                                    f"{IDENTITY}/WhoAmI", f"{IDENTITY}/CreateToken",
                                    "/shipyard.lineage.v1.LineageService/ListActivity"])
def test_every_role_may_read(method: str, role: str) -> None:
    authorize(method, as_role(role))


def test_roles_add_up() -> None:
    authorize(f"{PROJECTS}/CreateProject", as_role("production-engineer", "ml-engineer"))


def test_a_caller_without_roles_may_do_nothing() -> None:
    for method in POLICY:
        with pytest.raises(PermissionDenied):
            authorize(method, as_role())


@pytest.mark.parametrize("method", [
    f"{PROJECTS}/DropEverything",
    "/grpc.health.v1.Health/Check",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "",
    f"{PROJECTS}/createproject",
])
def test_an_unknown_method_is_denied_even_to_operators(method: str) -> None:
    with pytest.raises(PermissionDenied, match="not a public method"):
        authorize(method, as_role(*ROLES))


@pytest.mark.parametrize("method", INTERNAL)
def test_internal_methods_of_forwarded_services_are_refused_to_every_role(method: str) -> None:
    service, name = method[1:].split("/")
    assert any(s.full_name == service and name in s.methods_by_name for s, _ in FORWARDED), method
    with pytest.raises(PermissionDenied, match="not a public method"):
        authorize(method, as_role(*ROLES))


def test_every_policy_entry_is_a_full_method_path_with_known_roles() -> None:
    for method, roles in POLICY.items():
        # The V2 inference protocol keeps its published package, which stock clients call.
        assert method.startswith(("/shipyard.", "/inference.GRPCInferenceService/")), method
        assert method.count("/") == 2, method
        assert roles, method
        assert roles <= set(ROLES), method


# --- bearer tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwdw==",
                                    "sy_abc.def", "Token sy_abc.def", "Bearer\tsy_abc.def"])
def test_missing_or_malformed_authorization_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        credential(header)


@pytest.mark.parametrize("header", ["Bearer sy_abc.def", "bearer sy_abc.def", "BEARER sy_abc.def",
                                    "  Bearer   sy_abc.def  "])
def test_bearer_token_is_extracted(header: str) -> None:
    assert credential(header) == ("bearer", "sy_abc.def")


def test_the_consoles_cookie_is_passed_on_as_a_session_credential() -> None:
    assert credential("Session sy_abc.def") == ("session", "sy_abc.def")


async def test_public_api_authenticates_then_authorizes() -> None:
    world = await gateway_world()
    identity, api = world.identity, world.api
    try:
        admin = await identity.ensure_admin()
        assert admin is not None
        _, pat = await identity.create_user("pat", ["production-engineer"])

        assert (await api.caller(f"{PROJECTS}/CreateProject", f"Bearer {admin}")).user == "admin"
        assert (await api.caller(f"{PROJECTS}/ListProjects", f"Bearer {pat}")).user == "pat"
        with pytest.raises(PermissionDenied):
            await api.caller(f"{PROJECTS}/CreateProject", f"Bearer {pat}")
        with pytest.raises(Unauthenticated):
            await api.caller(f"{PROJECTS}/ListProjects", None)
        with pytest.raises(Unauthenticated):
            await api.caller(f"{PROJECTS}/ListProjects", f"Bearer {pat}x")
    finally:
        await world.close()

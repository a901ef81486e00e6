"""The methods the gateway answers itself: identity and platform status."""

from __future__ import annotations

from google.protobuf.message import Message

from shipyard import __version__
from shipyard.contracts.gateway.v1 import gateway_pb2 as pb
from shipyard.kit.bus import EventBus
from shipyard.kit.caller import Caller
from shipyard.kit.health import Report
from shipyard.kit.timestamps import timestamp
from shipyard_gateway.adapters.backends import Backends
from shipyard_gateway.app.identity import Identity
from shipyard_gateway.domain.identity import API, SESSION, TokenRecord, User
from shipyard_gateway.entrypoints.api import Route

_ROLE = {"operator": pb.ROLE_OPERATOR, "data-scientist": pb.ROLE_DATA_SCIENTIST,
         "ml-engineer": pb.ROLE_ML_ENGINEER, "production-engineer": pb.ROLE_PRODUCTION_ENGINEER}
_ROLE_NAME: dict[int, str] = {int(v): k for k, v in _ROLE.items()}
_KIND = {API: pb.TOKEN_KIND_API, SESSION: pb.TOKEN_KIND_SESSION}


def user_to_proto(user: User) -> pb.User:
    """The contract form of a user."""
    return pb.User(name=user.name, display_name=user.display_name,
                   roles=[_ROLE[r] for r in sorted(user.roles)], create_time=timestamp(user.create_time),
                   disabled=user.disabled)


def token_to_proto(token: TokenRecord) -> pb.Token:
    """The contract form of a token record (never its secret or hash)."""
    return pb.Token(id=token.id, user=token.user, description=token.description,
                    create_time=timestamp(token.create_time), expire_time=timestamp(token.expire_time),
                    last_use_time=timestamp(token.last_use_time), kind=_KIND[token.kind])


def role_names(roles: list[int]) -> list[str]:
    """Role enum values as the domain's names ("unknown" for ones it does not know)."""
    return [_ROLE_NAME.get(r, f"unknown role {r}") for r in roles]


def _nats_status(bus: EventBus, own: Report) -> pb.ServiceStatus:
    """NATS as the gateway sees it: connected, and answering its questions."""
    if not bus.connected:
        return pb.ServiceStatus(name="nats", healthy=False, detail="disconnected")
    asked = next((check for check in own.checks if check.name == "bus"), None)
    if asked is not None and not asked.healthy:
        return pb.ServiceStatus(name="nats", healthy=False, detail=asked.detail)
    return pb.ServiceStatus(name="nats", healthy=True, detail="connected")


def _gateway_status(own: Report) -> pb.ServiceStatus:
    """The gateway's own store and disks (its bus is NATS's line; its services have theirs)."""
    report = Report(tuple(check for check in own.checks if check.name not in ("bus", "ready")))
    return pb.ServiceStatus(name="gateway", healthy=report.healthy, detail=report.summary)


def status(backends: Backends, bus: EventBus, blob_url: str = "") -> pb.GetStatusResponse:
    """Every part of the platform and whether it is healthy."""
    own = backends.own_health()
    services = [_nats_status(bus, own), _gateway_status(own)]
    services += [pb.ServiceStatus(name=b.name, address=b.address, healthy=b.healthy, detail=b.detail)
                 for b in backends.services.values()]
    return pb.GetStatusResponse(services=services, healthy=all(s.healthy for s in services),
                                version=__version__, blob_url=blob_url)


def local_routes(identity: Identity, backends: Backends, bus: EventBus, blob_url: str = "") -> list[Route]:
    """Routes for IdentityService and PlatformService."""

    async def whoami(caller: Caller, _: Message) -> Message:
        user = user_to_proto(await identity.whoami(caller))
        if caller.run_id:  # a run's own token: say which run, so its code can tell
            user.run.CopyFrom(pb.CallerRun(id=caller.run_id, name=identity.run_name(caller)))
        return user

    async def create_user(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.CreateUserRequest)
        user, token = await identity.create_user(request.user.name, role_names(list(request.user.roles)),
                                                 request.user.display_name)
        return pb.CreateUserResponse(user=user_to_proto(user), token=token)

    async def list_users(caller: Caller, _: Message) -> Message:
        return pb.ListUsersResponse(users=[user_to_proto(u) for u in await identity.list_users()])

    async def create_token(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.CreateTokenRequest)
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else None
        record, secret = await identity.create_token(caller, request.description, ttl)
        return pb.CreateTokenResponse(token=token_to_proto(record), secret=secret)

    async def revoke_token(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.RevokeTokenRequest)
        await identity.revoke_token(caller, request.id)
        return pb.RevokeTokenResponse()

    async def list_tokens(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.ListTokensRequest)
        tokens = await identity.list_tokens(caller, request.user, request.all_users)
        return pb.ListTokensResponse(tokens=[token_to_proto(t) for t in tokens])

    async def set_user_roles(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.SetUserRolesRequest)
        return user_to_proto(await identity.set_roles(request.name, role_names(list(request.roles))))

    async def disable_user(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.DisableUserRequest)
        return user_to_proto(await identity.set_disabled(request.name, True))

    async def enable_user(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.EnableUserRequest)
        return user_to_proto(await identity.set_disabled(request.name, False))

    async def delete_user(caller: Caller, request: Message) -> Message:
        assert isinstance(request, pb.DeleteUserRequest)
        return pb.DeleteUserResponse(revoked_tokens=await identity.delete_user(request.name))

    async def get_status(caller: Caller, _: Message) -> Message:
        return status(backends, bus, blob_url)

    identity_service = "/shipyard.gateway.v1.IdentityService"
    return [
        Route(f"{identity_service}/WhoAmI", pb.WhoAmIRequest, pb.User, local=whoami),
        Route(f"{identity_service}/CreateUser", pb.CreateUserRequest, pb.CreateUserResponse,
              local=create_user),
        Route(f"{identity_service}/ListUsers", pb.ListUsersRequest, pb.ListUsersResponse, local=list_users),
        Route(f"{identity_service}/CreateToken", pb.CreateTokenRequest, pb.CreateTokenResponse,
              local=create_token),
        Route(f"{identity_service}/RevokeToken", pb.RevokeTokenRequest, pb.RevokeTokenResponse,
              local=revoke_token),
        Route(f"{identity_service}/ListTokens", pb.ListTokensRequest, pb.ListTokensResponse,
              local=list_tokens),
        Route(f"{identity_service}/SetUserRoles", pb.SetUserRolesRequest, pb.User, local=set_user_roles),
        Route(f"{identity_service}/DisableUser", pb.DisableUserRequest, pb.User, local=disable_user),
        Route(f"{identity_service}/EnableUser", pb.EnableUserRequest, pb.User, local=enable_user),
        Route(f"{identity_service}/DeleteUser", pb.DeleteUserRequest, pb.DeleteUserResponse,
              local=delete_user),
        Route("/shipyard.gateway.v1.PlatformService/GetStatus", pb.GetStatusRequest, pb.GetStatusResponse,
              local=get_status),
    ]

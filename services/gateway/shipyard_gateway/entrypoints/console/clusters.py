"""Clusters: the list (where each one is, its GPUs, whether it needs the viewer's own login and whether
they gave it), a cluster's page, "+ Cluster" with the fields of the chosen kind, "Edit" (the same form,
prefilled, its name and kind fixed) and delete (operators), and a user's own login to a cluster: the run
form's popup, or a page of its own without JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import grpc
from aiohttp import BodyPartReader, web
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.field_mask_pb2 import FieldMask

from shipyard.contracts.repo.v1 import credentials_pb2 as cpb
from shipyard.contracts.run.v1 import clusters_pb2 as pb
from shipyard.kit.cluster_logins import PREFIX, login_credential, slurm_token
from shipyard_gateway.domain.policy import POLICY
from shipyard_gateway.entrypoints.console.calls import CALLER, ConsoleError
from shipyard_gateway.entrypoints.console.edge import Console, local_target
from shipyard_gateway.entrypoints.console.projects import field_of

SERVICE = "/shipyard.run.v1.ClusterService"
CREDENTIALS = "/shipyard.repo.v1.CredentialService"
KIND_NAMES = {pb.CLUSTER_KIND_SLURM: "slurm", pb.CLUSTER_KIND_LSF: "lsf",
              pb.CLUSTER_KIND_KUBERNETES: "kubernetes"}
KINDS = {name: kind for kind, name in KIND_NAMES.items()}
SSH_PORT = 22
ON_LOGIN_NODE = "run-svc's own login node, no SSH"
KEY_MAX_BYTES = 64 * 1024  # a private key (or JWT) file is a few KiB; repo-svc refuses larger secrets anyway
LOGIN_TYPES = (cpb.CREDENTIAL_TYPE_SSH_KEY, cpb.CREDENTIAL_TYPE_TOKEN)
# What a Slurm cluster reached through slurmrestd has none of: the server drops them when a browser without
# JavaScript sends them beside a slurmrestd URL.
OVER_SSH_ONLY = ("host", "ssh_port", "ssh_host_key", "on_login_node")
COMMON_FIELDS = ("name", "description", "gpus", "max_workers")
# The fields each kind takes (the API's names). The form shows the chosen kind's; without JavaScript it
# shows them all, and only the chosen kind's are read, as the repo forms read the chosen source's.
KIND_FIELDS = {
    "slurm": ("host", "ssh_port", "ssh_user", "credential", "partition", "work_dir", "ssh_host_key",
              "login_required", "on_login_node", "slurmrestd_url"),
    "lsf": ("host", "ssh_port", "ssh_user", "credential", "queue", "work_dir", "ssh_host_key",
            "login_required", "on_login_node"),
    "kubernetes": ("kubeconfig_credential", "namespace", "service_account"),
}


def where(cluster: pb.Cluster) -> str:
    """The login node (with its port when not 22; run-svc's own when it submits there), slurmrestd's URL
    or, for Kubernetes, the namespace Jobs go to."""
    if cluster.kind == pb.CLUSTER_KIND_KUBERNETES:
        return f"namespace {cluster.namespace or 'default'}"
    if cluster.on_login_node:
        return ON_LOGIN_NODE
    if cluster.slurmrestd_url:
        return f"slurmrestd {cluster.slurmrestd_url}"
    port = f":{cluster.ssh_port}" if cluster.ssh_port not in (0, SSH_PORT) else ""
    return f"{cluster.host}{port}"


def cluster_from(values: Mapping[str, str]) -> pb.Cluster:
    """The cluster the form describes: the common fields and the chosen kind's, by the contract's types;
    ConsoleError naming a field that cannot be read."""
    kind = values.get("cluster.kind", "")
    if kind not in KINDS:
        raise ConsoleError.invalid("cluster.kind", f"must be one of {', '.join(KIND_FIELDS)}")
    cluster = pb.Cluster(kind=KINDS[kind])
    for name in (*COMMON_FIELDS, *KIND_FIELDS[kind]):
        field = pb.Cluster.DESCRIPTOR.fields_by_name[name]
        raw = values.get(f"cluster.{name}", "").strip()
        if field.type == FieldDescriptor.TYPE_BOOL:
            setattr(cluster, name, raw == "on")
        elif field.type == FieldDescriptor.TYPE_INT32:
            try:
                setattr(cluster, name, int(raw or "0"))
            except ValueError:
                problem = f"must be a whole number (got {raw[:20]!r})"
                raise ConsoleError.invalid(f"cluster.{name}", problem) from None
        else:
            setattr(cluster, name, raw)
    if cluster.slurmrestd_url:
        for name in OVER_SSH_ONLY:
            cluster.ClearField(name)
    elif kind != "kubernetes" and not cluster.ssh_port and not cluster.on_login_node:
        cluster.ssh_port = SSH_PORT
    return cluster


def form_values(cluster: pb.Cluster) -> dict[str, str]:
    """The form's fields as ``cluster`` fills them (what the edit form starts from)."""
    kind = KIND_NAMES.get(cluster.kind, "slurm")
    values = {"cluster.kind": kind}
    for name in (*COMMON_FIELDS, *KIND_FIELDS[kind]):
        value = getattr(cluster, name)
        if isinstance(value, bool):
            values[f"cluster.{name}"] = "on" if value else ""
        else:
            values[f"cluster.{name}"] = str(value) if value else ""
    return values


def changed_fields(current: pb.Cluster, wanted: pb.Cluster) -> list[str]:
    """The fields of the cluster's kind the edit form changed (its update mask): what was left as it was
    is not sent, so that only a real change is checked against the runs and endpoints on the cluster."""
    kind = KIND_NAMES.get(current.kind, "slurm")
    return [name for name in (*COMMON_FIELDS, *KIND_FIELDS[kind])
            if name != "name" and getattr(wanted, name) != getattr(current, name)]


def login_host(cluster: pb.Cluster) -> str:
    """The host a user's login to ``cluster`` is for: slurmrestd's (host:port) or the login node's, as the
    CLI's ``cluster login`` saves it."""
    return urlsplit(cluster.slurmrestd_url).netloc if cluster.slurmrestd_url else cluster.host


async def list_clusters(console: Console, request: web.Request) -> list[pb.Cluster]:
    """The clusters, by name, as the signed-in user sees them."""
    found = await console.call(request, f"{SERVICE}/ListClusters", pb.ListClustersRequest(),
                               pb.ListClustersResponse)
    return list(found.clusters)


async def viewer_logins(console: Console, request: web.Request) -> dict[str, str]:
    """The signed-in user's own logins to clusters (an SSH key, or a JWT for slurmrestd): cluster name →
    their user name there."""
    found = await console.call(request, f"{CREDENTIALS}/ListCredentials", cpb.ListCredentialsRequest(),
                               cpb.ListCredentialsResponse)
    return {c.name.removeprefix(PREFIX): c.username for c in found.credentials
            if c.name.startswith(PREFIX) and c.type in LOGIN_TYPES}


def _may(request: web.Request, method: str) -> bool:
    """Whether the signed-in user's roles may call ``method`` (the API's own policy decides)."""
    return bool(request[CALLER].roles & POLICY.get(method, frozenset()))


class ClusterPages:
    """``/clusters…``."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def add_routes(self, app: web.Application) -> None:
        guarded = self._console.guarded
        app.router.add_get("/clusters", guarded(self.list))
        app.router.add_get("/clusters/new", guarded(self.new))  # before /clusters/{name}
        app.router.add_post("/clusters/new", guarded(self.add))
        app.router.add_get("/clusters/{name}", guarded(self.detail))
        app.router.add_get("/clusters/{name}/edit", guarded(self.edit_form))
        app.router.add_post("/clusters/{name}/edit", guarded(self.edit))
        app.router.add_post("/clusters/{name}/delete", guarded(self.delete))
        app.router.add_get("/clusters/{name}/login", guarded(self.login_page))
        app.router.add_post("/clusters/{name}/login", guarded(self.login))
        app.router.add_post("/clusters/{name}/logout", guarded(self.logout))

    async def list(self, request: web.Request) -> web.Response:
        clusters = await list_clusters(self._console, request)
        return await self._console.page(
            request, "clusters/list.html.j2", "clusters", clusters=clusters,
            logins=await viewer_logins(self._console, request), kind_names=KIND_NAMES, where=where,
            may_add=_may(request, f"{SERVICE}/AddCluster"))

    async def new(self, request: web.Request) -> web.Response:
        if not _may(request, f"{SERVICE}/AddCluster"):
            raise ConsoleError(grpc.StatusCode.PERMISSION_DENIED, "AddCluster: only operators add clusters")
        return await self._form(request, {"cluster.kind": "slurm"}, None)

    async def add(self, request: web.Request) -> web.Response:
        form = await request.post()
        values = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        try:
            cluster = cluster_from(values)
            made = await self._console.call(request, f"{SERVICE}/AddCluster",
                                            pb.AddClusterRequest(cluster=cluster), pb.Cluster)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, values, exc)
        raise web.HTTPSeeOther(f"/clusters/{made.name}")

    async def edit_form(self, request: web.Request) -> web.Response:
        if not _may(request, f"{SERVICE}/UpdateCluster"):
            raise ConsoleError(grpc.StatusCode.PERMISSION_DENIED, "UpdateCluster: only operators change "
                                                                  "clusters")
        cluster = await self._get(request)
        return await self._form(request, form_values(cluster), None, editing=cluster)

    async def edit(self, request: web.Request) -> web.Response:
        """Change what the form changed (nothing changed: back to the cluster's page); a refusal shows on
        the form, by the field it names."""
        form = await request.post()
        values = {key: str(value) for key, value in form.items() if isinstance(value, str)}
        current = await self._get(request)
        # Its name and kind are the record's, whatever was posted: they never change.
        values.update({"cluster.name": current.name, "cluster.kind": KIND_NAMES.get(current.kind, "")})
        try:
            wanted = cluster_from(values)
            paths = changed_fields(current, wanted)
            if paths:
                await self._console.call(request, f"{SERVICE}/UpdateCluster", pb.UpdateClusterRequest(
                    name=current.name, cluster=wanted, update_mask=FieldMask(paths=paths)), pb.Cluster)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._form(request, values, exc, editing=current)
        raise web.HTTPSeeOther(f"/clusters/{current.name}")

    async def _get(self, request: web.Request) -> pb.Cluster:
        return await self._console.call(request, f"{SERVICE}/GetCluster",
                                        pb.GetClusterRequest(name=request.match_info["name"]), pb.Cluster)

    async def _form(self, request: web.Request, values: dict[str, str], error: ConsoleError | None,
                    editing: pb.Cluster | None = None) -> web.Response:
        """The new-cluster form, or (``editing``) the edit form of that cluster: its kind alone offered."""
        mine = await self._console.call(request, f"{CREDENTIALS}/ListCredentials",
                                        cpb.ListCredentialsRequest(), cpb.ListCredentialsResponse)
        # The operator's own logins to clusters (cluster-NAME) are theirs, not a cluster's account.
        accounts = [c for c in mine.credentials if not c.name.startswith(PREFIX)]
        ssh_keys = [c.name for c in accounts if c.type == cpb.CREDENTIAL_TYPE_SSH_KEY]
        tokens = [c.name for c in accounts if c.type == cpb.CREDENTIAL_TYPE_TOKEN]
        return await self._console.page(
            request, "clusters/form.html.j2", "clusters", status=400 if error else 200, values=values,
            kinds=(KIND_NAMES[editing.kind],) if editing else tuple(KIND_FIELDS), ssh_keys=ssh_keys,
            tokens=tokens, editing=editing.name if editing else "",
            credentials=[c.name for c in mine.credentials],
            error=error.message if error else "", error_field=field_of(error) if error else "")

    async def detail(self, request: web.Request, error: ConsoleError | None = None) -> web.Response:
        name = request.match_info["name"]
        cluster = await self._console.call(request, f"{SERVICE}/GetCluster", pb.GetClusterRequest(name=name),
                                           pb.Cluster)
        return await self._console.page(
            request, "clusters/detail.html.j2", "clusters", status=400 if error else 200, cluster=cluster,
            logins=await viewer_logins(self._console, request), kind_names=KIND_NAMES, where=where,
            may_delete=_may(request, f"{SERVICE}/DeleteCluster"),
            may_edit=_may(request, f"{SERVICE}/UpdateCluster"), error=error.message if error else "")

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            await self._console.call(request, f"{SERVICE}/DeleteCluster", pb.DeleteClusterRequest(name=name),
                                     pb.DeleteClusterResponse)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self.detail(request, exc)
        raise web.HTTPSeeOther("/clusters")

    async def login_page(self, request: web.Request) -> web.Response:
        logins = await viewer_logins(self._console, request)
        name = request.match_info["name"]
        values = {"credential.username": logins.get(name, ""), "next": request.query.get("next", "")}
        return await self._login_form(request, values, None)

    async def _login_form(self, request: web.Request, values: dict[str, str], error: ConsoleError | None
                          ) -> web.Response:
        name = request.match_info["name"]
        cluster = await self._console.call(request, f"{SERVICE}/GetCluster", pb.GetClusterRequest(name=name),
                                           pb.Cluster)
        return await self._console.page(
            request, "clusters/login.html.j2", "clusters", status=400 if error else 200, cluster=cluster,
            values=values, back=local_target(values.get("next"), f"/clusters/{name}"),
            error=error.message if error else "", error_field=field_of(error) if error else "")

    async def login(self, request: web.Request) -> web.Response:
        """Save the user's login (their credential ``cluster-NAME`` for the cluster's host: an SSH key, or
        a token holding their JWT for one reached through slurmrestd), then on to ``next``: the run form's
        popup posts here too, and goes on with the form it came from."""
        name = request.match_info["name"]
        values, secret, oversized = await _read_login(request)
        try:
            if oversized:
                raise ConsoleError.invalid("secret", f"a key or token file is at most "
                                                     f"{KEY_MAX_BYTES // 1024} KiB")
            cluster = await self._console.call(request, f"{SERVICE}/GetCluster",
                                               pb.GetClusterRequest(name=name), pb.Cluster)
            saving = login_saved(cluster, values["credential.username"], secret)
            await self._console.call(request, f"{CREDENTIALS}/SaveCredential", saving, cpb.Credential)
        except ConsoleError as exc:
            if exc.signed_out:
                raise
            return await self._login_form(request, values, exc)
        raise web.HTTPSeeOther(local_target(values["next"], f"/clusters/{name}"))

    async def logout(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        form = await request.post()
        await self._console.call(request, f"{CREDENTIALS}/DeleteCredential",
                                 cpb.DeleteCredentialRequest(name=login_credential(name)),
                                 cpb.DeleteCredentialResponse)
        raise web.HTTPSeeOther(local_target(str(form.get("next", "")), f"/clusters/{name}"))


def login_saved(cluster: pb.Cluster, user: str, secret: str) -> cpb.SaveCredentialRequest:
    """The user's login to ``cluster`` as the CLI's ``cluster login`` saves it: an SSH key, or for a
    cluster reached through slurmrestd a token holding their JWT (as ``scontrol token`` prints it, or
    the token alone)."""
    if cluster.slurmrestd_url:
        kind, secret = cpb.CREDENTIAL_TYPE_TOKEN, slurm_token(secret)
    else:
        kind = cpb.CREDENTIAL_TYPE_SSH_KEY
    login = cpb.Credential(name=login_credential(cluster.name), type=kind, host=login_host(cluster),
                           username=user)
    return cpb.SaveCredentialRequest(credential=login, secret=secret)


async def _read_login(request: web.Request) -> tuple[dict[str, str], str, bool]:
    """The login form's fields, the private key or JWT (the file when one was chosen, else the text typed)
    and whether the file was larger than any key (KEY_MAX_BYTES; then it is not read further)."""
    values = {"credential.username": "", "next": "", "secret": ""}
    uploaded = b""
    oversized = False
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is None:
            values[part.name or ""] = await part.text()
            continue
        while (chunk := await part.read_chunk()) and not oversized:
            uploaded += chunk
            oversized = len(uploaded) > KEY_MAX_BYTES
    values["credential.username"] = values["credential.username"].strip()
    typed = values.pop("secret")  # a secret is never shown again, not even the one just typed
    return values, uploaded.decode(errors="replace") or typed, oversized

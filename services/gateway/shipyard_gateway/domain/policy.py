"""Which roles may call which public method (the coarse check at the gateway).

Resource-level rules (only a project's owner or an operator may delete it) are the owning
service's, which gets the caller with every forwarded call.
"""

from __future__ import annotations

from shipyard.kit.caller import Caller
from shipyard.kit.errors import PermissionDenied

ANY = frozenset({"operator", "data-scientist", "ml-engineer", "production-engineer"})
DEVELOPERS = frozenset({"operator", "data-scientist", "ml-engineer"})
OPERATORS = frozenset({"operator"})
# The roles (docs/architecture.md §2): ML engineers publish and view the catalog; production
# engineers view it and deploy; a data scientist does neither.
PUBLISHERS = frozenset({"operator", "ml-engineer"})
CATALOG_READERS = frozenset({"operator", "ml-engineer", "production-engineer"})
DEPLOYERS = frozenset({"operator", "production-engineer"})
SERVING = "/shipyard.serving.v1.ServingService"
TRACKING = "/shipyard.run.v1.TrackingService"

PUT_BLOB = "/shipyard.blobs/PutBlob"
GET_BLOB = "/shipyard.blobs/GetBlob"
COUNT_WATCHES = "/shipyard.gateway/CountWatches"

POLICY: dict[str, frozenset[str]] = {
    "/shipyard.repo.v1.ProjectService/CreateProject": DEVELOPERS,
    "/shipyard.repo.v1.ProjectService/BatchCreateProjects": DEVELOPERS,
    "/shipyard.repo.v1.ProjectService/GetProject": ANY,
    "/shipyard.repo.v1.ProjectService/ListProjects": ANY,
    "/shipyard.repo.v1.ProjectService/UpdateProject": DEVELOPERS,
    "/shipyard.repo.v1.ProjectService/DeleteProject": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/CreateRepo": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/GetRepo": ANY,
    "/shipyard.repo.v1.RepoService/ListRepos": ANY,
    "/shipyard.repo.v1.RepoService/UpdateRepo": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/DeleteRepo": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/FindMissingBlobs": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/CreateVersion": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/CreateVersionFromPath": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/GetVersion": ANY,
    "/shipyard.repo.v1.RepoService/ListVersions": ANY,
    "/shipyard.repo.v1.RepoService/ListVersionFiles": ANY,
    "/shipyard.repo.v1.RepoService/CompareVersions": ANY,
    "/shipyard.repo.v1.RepoService/DeleteVersion": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/SetFeatureSpec": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/SnapshotCode": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/CollectGarbage": OPERATORS,
    # MLflow's registry: model tags and aliases, by whoever may update the repo (repo-svc checks).
    "/shipyard.repo.v1.RepoService/LabelRepo": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/LabelVersion": DEVELOPERS,
    "/shipyard.repo.v1.RepoService/SetAlias": DEVELOPERS,
    "/shipyard.repo.v1.CredentialService/SaveCredential": ANY,
    "/shipyard.repo.v1.CredentialService/ListCredentials": ANY,
    "/shipyard.repo.v1.CredentialService/GetLastCredential": ANY,
    "/shipyard.repo.v1.CredentialService/DeleteCredential": ANY,
    # The image catalog: anyone signed in reads it and adds images; only an image's owner or an
    # operator deletes it (repo-svc checks that).
    "/shipyard.repo.v1.ImageService/AddImage": ANY,
    "/shipyard.repo.v1.ImageService/GetImage": ANY,
    "/shipyard.repo.v1.ImageService/ListImages": ANY,
    "/shipyard.repo.v1.ImageService/DeleteImage": ANY,
    "/shipyard.repo.v1.ImageService/ResolveImage": ANY,
    # The HTTP blob endpoints (not gRPC methods): uploading content, reading it.
    PUT_BLOB: DEVELOPERS,
    GET_BLOB: ANY,
    "/shipyard.lineage.v1.LineageService/ListActivity": ANY,
    "/shipyard.lineage.v1.LineageService/GetLineage": ANY,
    "/shipyard.lineage.v1.LineageService/GetDashboard": ANY,
    "/shipyard.lineage.v1.LineageService/ExportOpenLineage": ANY,
    "/shipyard.lineage.v1.LineageService/GetProjectionStatus": ANY,
    "/shipyard.lineage.v1.LineageService/Rebuild": OPERATORS,
    "/shipyard.run.v1.RunService/SubmitRun": DEVELOPERS,
    "/shipyard.run.v1.RunService/GetRun": ANY,
    "/shipyard.run.v1.RunService/ListRuns": ANY,
    "/shipyard.run.v1.RunService/StopRun": DEVELOPERS,
    "/shipyard.run.v1.RunService/DeleteRun": DEVELOPERS,
    "/shipyard.run.v1.RunService/ReadRunLogs": ANY,
    "/shipyard.run.v1.RunService/GetRunMetrics": ANY,
    "/shipyard.run.v1.RunService/CloneRun": DEVELOPERS,
    "/shipyard.run.v1.RunService/CreateTemplate": DEVELOPERS,
    "/shipyard.run.v1.RunService/GetTemplate": ANY,
    "/shipyard.run.v1.RunService/ListTemplates": ANY,
    "/shipyard.run.v1.RunService/DeleteTemplate": DEVELOPERS,
    "/shipyard.run.v1.RunService/StartTensorBoard": DEVELOPERS,
    "/shipyard.run.v1.RunService/StopTensorBoard": DEVELOPERS,
    "/shipyard.run.v1.RunService/GetTensorBoard": ANY,
    # MLflow's tracking API (the gateway's /mlflow routes): reading as for runs; writing as
    # for submitting, on the caller's own runs (run-svc checks; a run's token writes only its run).
    f"{TRACKING}/CreateTrackedRun": DEVELOPERS,
    f"{TRACKING}/UpdateTrackedRun": DEVELOPERS,
    f"{TRACKING}/GetRunById": ANY,
    f"{TRACKING}/LogRunData": DEVELOPERS,
    f"{TRACKING}/DeleteRunTag": DEVELOPERS,
    f"{TRACKING}/GetMetricHistory": ANY,
    f"{TRACKING}/SearchRuns": ANY,
    f"{TRACKING}/RecordArtifacts": DEVELOPERS,
    f"{TRACKING}/ListArtifacts": ANY,
    f"{TRACKING}/GetArtifact": ANY,
    f"{TRACKING}/CreateLoggedModel": DEVELOPERS,
    f"{TRACKING}/GetLoggedModel": ANY,
    f"{TRACKING}/FinalizeLoggedModel": DEVELOPERS,
    f"{TRACKING}/SetLoggedModelTags": DEVELOPERS,
    f"{TRACKING}/SearchLoggedModels": ANY,
    f"{TRACKING}/RegisterModelVersion": DEVELOPERS,
    # Clusters: operators add, change and delete them (run-svc checks too); everyone sees them.
    "/shipyard.run.v1.ClusterService/AddCluster": OPERATORS,
    "/shipyard.run.v1.ClusterService/UpdateCluster": OPERATORS,
    "/shipyard.run.v1.ClusterService/GetCluster": ANY,
    "/shipyard.run.v1.ClusterService/ListClusters": ANY,
    "/shipyard.run.v1.ClusterService/DeleteCluster": OPERATORS,
    # Hyperparameter studies: read as runs are; stopped and their limits changed as runs are stopped (run-svc
    # checks the owner).
    "/shipyard.run.v1.StudyService/GetStudy": ANY,
    "/shipyard.run.v1.StudyService/ListStudies": ANY,
    "/shipyard.run.v1.StudyService/ListTrials": ANY,
    "/shipyard.run.v1.StudyService/StopStudy": DEVELOPERS,
    "/shipyard.run.v1.StudyService/UpdateStudy": DEVELOPERS,
    # Building an image runs its installer like a run does: developers, as for runs.
    "/shipyard.run.v1.ImageBuildService/BuildImage": DEVELOPERS,
    "/shipyard.run.v1.ImageBuildService/GetImageBuild": ANY,
    "/shipyard.run.v1.ImageBuildService/ListImageBuilds": ANY,
    "/shipyard.run.v1.ImageBuildService/ReadImageBuildLog": ANY,
    f"{SERVING}/CreateInference": ANY,
    f"{SERVING}/GetInference": ANY,
    f"{SERVING}/ListInferences": ANY,
    f"{SERVING}/DeleteInference": ANY,
    f"{SERVING}/PublishModel": PUBLISHERS,
    f"{SERVING}/GetCatalogEntry": CATALOG_READERS,
    f"{SERVING}/ListCatalog": CATALOG_READERS,
    f"{SERVING}/DeleteCatalogEntry": PUBLISHERS,
    f"{SERVING}/CreateDeployment": DEPLOYERS,
    f"{SERVING}/GetDeployment": CATALOG_READERS,
    f"{SERVING}/ListDeployments": CATALOG_READERS,
    f"{SERVING}/UpdateDeployment": DEPLOYERS,
    f"{SERVING}/DeleteDeployment": DEPLOYERS,
    f"{SERVING}/GetKubernetesManifest": ANY,
    # Inference requests to /serving/<name>/v2/… (HTTP, not a gRPC method).
    "/shipyard.serving/Infer": ANY,
    # The same traffic over the V2 gRPC protocol (entrypoints.inference_grpc).
    **{f"/inference.GRPCInferenceService/{method}": ANY for method in (
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")},
    # How many event streams the HTTP edge holds open now (GET /api/watches).
    COUNT_WATCHES: OPERATORS,
    "/shipyard.gateway.v1.IdentityService/WhoAmI": ANY,
    "/shipyard.gateway.v1.IdentityService/CreateUser": OPERATORS,
    "/shipyard.gateway.v1.IdentityService/ListUsers": OPERATORS,
    "/shipyard.gateway.v1.IdentityService/CreateToken": ANY,
    "/shipyard.gateway.v1.IdentityService/RevokeToken": ANY,
    # Your own tokens; the use case lets operators list anyone's.
    "/shipyard.gateway.v1.IdentityService/ListTokens": ANY,
    "/shipyard.gateway.v1.IdentityService/SetUserRoles": OPERATORS,
    "/shipyard.gateway.v1.IdentityService/DisableUser": OPERATORS,
    "/shipyard.gateway.v1.IdentityService/EnableUser": OPERATORS,
    "/shipyard.gateway.v1.IdentityService/DeleteUser": OPERATORS,
    "/shipyard.gateway.v1.EventService/Watch": ANY,
    # Webhooks are their owner's (operators see all): the service checks who may see which.
    "/shipyard.gateway.v1.WebhookService/CreateWebhook": ANY,
    "/shipyard.gateway.v1.WebhookService/GetWebhook": ANY,
    "/shipyard.gateway.v1.WebhookService/ListWebhooks": ANY,
    "/shipyard.gateway.v1.WebhookService/DeleteWebhook": ANY,
    "/shipyard.gateway.v1.WebhookService/ListDeadLetters": ANY,
    "/shipyard.gateway.v1.PlatformService/GetStatus": ANY,
}


def authorize(method: str, caller: Caller) -> None:
    """PermissionDenied unless one of the caller's roles may call ``method``."""
    allowed = POLICY.get(method)
    if allowed is None:
        raise PermissionDenied(f"{method} is not a public method")
    if not caller.roles & allowed:
        raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs one of the roles "
                               f"{', '.join(sorted(allowed))}; {caller.user} has "
                               f"{', '.join(sorted(caller.roles)) or 'none'}")

"""A Kubernetes API client of its own for a cluster, from the kubeconfig an operator stored.

run-svc (its Kubernetes executor) and serving-svc (KServe on a cluster) each speak to a cluster's API
server with a client built here: never the process-wide configuration, so that two clusters, or a
cluster and the machine's own kubeconfig, never mix. The ``kubernetes`` client is blocking: callers run
its calls in worker threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, ApiException
from kubernetes.config.config_exception import ConfigException


def api_client(kubeconfig: str, files: Path) -> ApiClient:
    """A client of its own for the cluster the kubeconfig names (its current context); ``files``: where
    the client may write the certificates the kubeconfig holds inline. ValueError naming what is wrong."""
    try:
        loaded = yaml.safe_load(kubeconfig)
    except yaml.YAMLError as exc:
        raise ValueError(f"it is not YAML: {exc}") from None
    if not isinstance(loaded, dict) or "clusters" not in loaded:
        raise ValueError("it is not a kubeconfig (a YAML mapping with clusters, users and contexts)")
    files.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return kube_config.new_client_from_config_dict(loaded, persist_config=False,
                                                       temp_file_path=str(files))
    except (ConfigException, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the kubernetes client cannot use it: {exc}") from None


def api_message(exc: ApiException) -> str:
    """The API server's own message (its Status object), or the body as it came."""
    body = exc.body if isinstance(exc.body, str) else (exc.body or b"").decode(errors="replace")
    try:
        return str(json.loads(body).get("message") or body)[:500]
    except (ValueError, AttributeError):
        return body[:500]

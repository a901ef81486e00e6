"""Architecture rules of docs/architecture.md (§1, §3), checked on the import statements of services/.

- services never import each other; from ``shipyard.`` they use only ``kit`` and ``contracts``;
- a service's ``domain/`` is pure: nothing from its own app/adapters/entrypoints, no I/O libraries,
  no protobuf (its events are domain values, translated to messages outside it);
- its ``app/`` depends on ports, never on ``adapters/`` or ``entrypoints/``;
- each service package has the same layout;
- the model server (``shipyard_model_server``: users' models run in it) is a program of its own under
  services/, started by serving-svc as a process: the two never import each other, and it has the
  layers of a service but no use cases or composition root.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
SERVICE_PACKAGES = ("shipyard_repo", "shipyard_run", "shipyard_serving", "shipyard_lineage",
                    "shipyard_gateway")
MODEL_SERVER = "shipyard_model_server"
PACKAGES = (*SERVICE_PACKAGES, MODEL_SERVER)  # every program under services/
ALLOWED_SHIPYARD = ("shipyard.kit", "shipyard.contracts")
IO_LIBRARIES = ("grpc", "nats", "faststream", "pymongo", "sqlite3", "aiohttp", "motor", "minio")
PROTOBUF = ("google.protobuf", "shipyard.contracts")  # and any generated *_pb2 module
# Each service: its domain, use cases, adapters and entrypoints, its composition root, its own
# settings class (the kit's shared ones and those only it reads), and how it is run.
LAYOUT = ("domain/", "app/", "adapters/", "entrypoints/", "bootstrap.py", "settings.py", "__main__.py")
MODEL_SERVER_LAYOUT = ("domain/", "adapters/", "entrypoints/", "__main__.py")


@dataclass(frozen=True)
class Import:
    """One imported module (absolute dotted name) and where."""

    module: str
    line: int


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _allowed_shipyard(module: str) -> bool:
    """shipyard.kit…, shipyard.contracts…, and the root package itself (``from shipyard import
    __version__``); anything else under shipyard (cli, client, local, sdk, …) is not for services."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1].startswith("__")):
        return True
    return any(_is_under(module, allowed) for allowed in ALLOWED_SHIPYARD)


def is_protobuf(module: str) -> bool:
    """google.protobuf…, the generated contracts, or any generated ``*_pb2`` (``*_pb2_grpc``) module."""
    generated = any(part.endswith(("_pb2", "_pb2_grpc")) for part in module.split("."))
    return generated or any(_is_under(module, protobuf) for protobuf in PROTOBUF)


def imports_of(source: str, module: str, is_package: bool = False) -> list[Import]:
    """Every module that ``source`` (the code of ``module``) imports, relative ones resolved.

    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a submodule), so a rule on a
    package catches ``from shipyard_repo import adapters`` as well.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append(Import(target, node.lineno))
            found.extend(Import(f"{target}.{alias.name}", node.lineno)
                         for alias in node.names if alias.name != "*")
    return found


def violations_in(source: str, path: str, service_package: str) -> list[str]:
    """The rules broken by one file of a service, each as ``path:line: what``."""
    rel = path.split(f"{service_package}/", 1)[1] if f"{service_package}/" in path else ""
    parts = rel.removesuffix(".py").split("/") if rel else []
    is_package = bool(parts) and parts[-1] == "__init__"
    module = ".".join([service_package, *(parts[:-1] if is_package else parts)]) if rel else "tests"
    layer = parts[0] if len(parts) > 1 else ""
    found: list[str] = []
    for imp in imports_of(source, module, is_package):
        where = f"{path}:{imp.line}"
        top = imp.module.split(".")[0]
        if {top, service_package} == {"shipyard_serving", MODEL_SERVER}:
            found.append(f"{where}: imports {imp.module}; serving-svc and the model server never import "
                         "each other (serving-svc starts the model server as a process)")
        elif top in PACKAGES and top != service_package:
            found.append(f"{where}: imports another service's package {imp.module}")
        if top == "shipyard" and not _allowed_shipyard(imp.module):
            found.append(f"{where}: imports {imp.module}; services may use only shipyard.kit and "
                         "shipyard.contracts")
        if layer == "domain":
            for own in ("adapters", "entrypoints", "app"):
                if _is_under(imp.module, f"{service_package}.{own}"):
                    found.append(f"{where}: domain imports {imp.module} (domain must not depend on {own})")
            if top in IO_LIBRARIES or top.startswith("grpc_"):
                found.append(f"{where}: domain imports the I/O library {imp.module}")
            if is_protobuf(imp.module):
                found.append(f"{where}: domain imports the protobuf module {imp.module} (domain values are "
                             "translated to messages outside domain/)")
        if layer == "app":
            for outer in ("adapters", "entrypoints"):
                if _is_under(imp.module, f"{service_package}.{outer}"):
                    found.append(f"{where}: app imports {imp.module} (app must depend on ports, not {outer})")
    return list(dict.fromkeys(found))


def service_dirs() -> list[tuple[Path, str]]:
    """(services/<name>, its package name) for every service directory."""
    found = []
    for service in sorted(p for p in SERVICES.iterdir() if p.is_dir()):
        packages = [p.name for p in service.iterdir() if p.is_dir() and p.name in PACKAGES]
        assert len(packages) == 1, \
            f"{service.relative_to(ROOT)}: expected one service package, got {packages}"
        found.append((service, packages[0]))
    return found


def python_files(service: Path) -> list[Path]:
    return sorted(p for p in service.rglob("*.py") if "__pycache__" not in p.parts)


def layout_entry_exists(root: Path, entry: str) -> bool:
    """``name/`` must be a package directory (with __init__.py), ``name.py`` a file."""
    if entry.endswith("/"):
        return (root / entry / "__init__.py").is_file()
    return (root / entry).is_file()


# --- the rules on the real code ----------------------------------------------------------


def test_every_service_package_is_found() -> None:
    assert sorted(pkg for _, pkg in service_dirs()) == sorted(PACKAGES)


def test_services_respect_their_boundaries() -> None:
    problems: list[str] = []
    checked = 0
    for service, package in service_dirs():
        for file in python_files(service):
            rel = str(file.relative_to(ROOT))
            problems.extend(violations_in(file.read_text(), rel, package))
            checked += 1
    assert checked > 20, "the checker found too few files to be looking in the right place"
    assert not problems, "architecture boundaries broken:\n" + "\n".join(problems)


@pytest.mark.parametrize("package", PACKAGES)
def test_service_package_layout(package: str) -> None:
    [service] = [s for s, p in service_dirs() if p == package]
    root = service / package
    layout = MODEL_SERVER_LAYOUT if package == MODEL_SERVER else LAYOUT
    missing = [entry for entry in layout if not layout_entry_exists(root, entry)]
    assert not missing, f"{root.relative_to(ROOT)} lacks {', '.join(missing)}"


# --- the checker catches what it should --------------------------------------------------

REPO = "services/repo-svc/shipyard_repo"


@pytest.mark.parametrize(("path", "source", "expected"), [
    (f"{REPO}/adapters/x.py", "import shipyard_run.domain\n", "another service's package shipyard_run"),
    (f"{REPO}/adapters/x.py", "from shipyard_gateway.app import identity\n", "another service's package"),
    (f"{REPO}/entrypoints/x.py", "from shipyard.cli import main\n", "shipyard.cli"),
    (f"{REPO}/app/x.py", "import shipyard.local.supervisor\n", "shipyard.local"),
    (f"{REPO}/app/x.py", "from shipyard import sdk\n", "shipyard.sdk"),
    (f"{REPO}/entrypoints/x.py", "from shipyard import client\n", "shipyard.client"),
    (f"{REPO}/domain/x.py", "import grpc\n", "I/O library grpc"),
    (f"{REPO}/domain/x.py", "from grpc_health.v1 import health_pb2\n", "I/O library grpc_health"),
    (f"{REPO}/domain/x.py", "import sqlite3\n", "I/O library sqlite3"),
    (f"{REPO}/domain/x.py", "from pymongo import AsyncMongoClient\n", "I/O library pymongo"),
    (f"{REPO}/domain/x.py", "from shipyard_repo.adapters.store import PROJECTS\n", "domain imports"),
    (f"{REPO}/domain/x.py", "from ..app import ports\n", "domain imports shipyard_repo.app"),
    (f"{REPO}/domain/x.py", "from .. import entrypoints\n", "domain imports shipyard_repo.entrypoints"),
    (f"{REPO}/domain/x.py", "def f():\n    import aiohttp\n", "I/O library aiohttp"),
    (f"{REPO}/domain/x.py", "from google.protobuf.message import Message\n",
     "protobuf module google.protobuf"),
    (f"{REPO}/domain/x.py", "from google.protobuf import timestamp_pb2\n",
     "protobuf module google.protobuf"),
    (f"{REPO}/domain/x.py", "from shipyard.contracts.events.v1 import events_pb2 as ev\n",
     "protobuf module shipyard.contracts"),
    (f"{REPO}/domain/sub/x.py", "import shipyard.contracts\n", "protobuf module shipyard.contracts"),
    (f"{REPO}/domain/x.py", "from vendor.api import thing_pb2\n", "protobuf module vendor.api.thing_pb2"),
    (f"{REPO}/domain/x.py", "import thing_pb2_grpc\n", "protobuf module thing_pb2_grpc"),
    (f"{REPO}/domain/x.py",
     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from google.protobuf.message import Message\n",
     "protobuf module google.protobuf"),
    (f"{REPO}/app/x.py", "from shipyard_repo.adapters.store import PROJECTS\n", "app imports"),
    (f"{REPO}/app/x.py", "from ..entrypoints.grpc_api import ProjectServicer\n", "app imports"),
    (f"{REPO}/app/sub/x.py", "from ...adapters import store\n", "app imports shipyard_repo.adapters"),
    ("services/repo-svc/tests/test_x.py", "import shipyard_lineage\n", "another service's package"),
])
def test_the_checker_catches_a_violation(path: str, source: str, expected: str) -> None:
    problems = violations_in(source, path, "shipyard_repo")
    assert problems, f"no violation found in {source!r}"
    assert expected in problems[0]
    assert problems[0].startswith(f"{path}:"), problems[0]


SERVING = "services/serving-svc/shipyard_serving"
SERVER = "services/model-server/shipyard_model_server"


@pytest.mark.parametrize(("path", "source", "package"), [
    (f"{SERVING}/adapters/x.py", "from shipyard_model_server.domain import tensors\n", "shipyard_serving"),
    (f"{SERVING}/app/x.py", "def f():\n    import shipyard_model_server.entrypoints.process\n",
     "shipyard_serving"),
    ("services/serving-svc/tests/test_x.py", "import shipyard_model_server\n", "shipyard_serving"),
    (f"{SERVER}/entrypoints/x.py", "from shipyard_serving.domain.serving import FRAMEWORKS\n", MODEL_SERVER),
    (f"{SERVER}/domain/x.py", "from shipyard_serving import adapters\n", MODEL_SERVER),
    ("services/model-server/tests/test_x.py", "import shipyard_serving.adapters.kserve\n", MODEL_SERVER),
])
def test_serving_svc_and_the_model_server_do_not_import_each_other(path: str, source: str,
                                                                   package: str) -> None:
    problems = violations_in(source, path, package)
    assert problems, f"no violation found in {source!r}"
    assert "serving-svc and the model server never import each other" in problems[0]


def test_the_model_server_may_use_only_the_kit_and_the_contracts() -> None:
    assert violations_in("from shipyard.kit.replica_load import format_load\n",
                         f"{SERVER}/entrypoints/x.py", MODEL_SERVER) == []
    [problem] = violations_in("import shipyard.local.harness\n", f"{SERVER}/entrypoints/x.py", MODEL_SERVER)
    assert "services may use only shipyard.kit and shipyard.contracts" in problem
    [problem] = violations_in("import shipyard_gateway\n", f"{SERVER}/adapters/x.py", MODEL_SERVER)
    assert "another service's package" in problem


def test_the_checker_reports_the_line() -> None:
    source = '"""doc."""\n\nfrom __future__ import annotations\n\nimport os\nimport grpc\n'
    assert violations_in(source, f"{REPO}/domain/x.py", "shipyard_repo") == [
        f"{REPO}/domain/x.py:6: domain imports the I/O library grpc"]


@pytest.mark.parametrize(("path", "source"), [
    (f"{REPO}/domain/x.py", "from shipyard.kit.errors import InvalidArgument\n"
                            "from .names import check_name\n"),
    (f"{REPO}/adapters/x.py", "from google.protobuf.message import Message\nimport re\n"),
    (f"{REPO}/domain/x.py", "from .google import protobuf\nimport pb2_names\n"),
    (f"{REPO}/app/x.py", "from shipyard_repo.app.ports import UnitOfWork\n"
                         "from shipyard_repo.domain.projects import Project\n"
                         "from shipyard.contracts.events.v1 import events_pb2\n"),
    (f"{REPO}/adapters/x.py", "import sqlite3\nimport grpc\n"
                              "from shipyard_repo.app.ports import RequestLog\n"),
    (f"{REPO}/entrypoints/x.py", "from shipyard import __version__\n"),
    (f"{REPO}/entrypoints/x.py", "import grpc\nfrom shipyard_repo.adapters.store import PROJECTS\n"),
    (f"{REPO}/bootstrap.py", "from shipyard_repo.adapters.store import COLLECTIONS\nimport shipyard\n"),
])
def test_the_checker_accepts_allowed_imports(path: str, source: str) -> None:
    assert violations_in(source, path, "shipyard_repo") == []


def test_layout_check_sees_a_missing_entry(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "__init__.py").write_text("")
    (tmp_path / "app").mkdir()  # not a package: no __init__.py
    (tmp_path / "bootstrap.py").write_text("")
    (tmp_path / "settings.py").write_text("")
    assert [e for e in LAYOUT if not layout_entry_exists(tmp_path, e)] == [
        "app/", "adapters/", "entrypoints/", "__main__.py"]


def test_relative_imports_are_resolved() -> None:
    found = {i.module for i in imports_of("from .names import x\nfrom .. import app\n",
                                          "shipyard_repo.domain.projects")}
    assert {"shipyard_repo.domain.names", "shipyard_repo.domain.names.x", "shipyard_repo",
            "shipyard_repo.app"} <= found
    in_init = {i.module for i in imports_of("from .projects import Project\n", "shipyard_repo.domain",
                                            is_package=True)}
    assert "shipyard_repo.domain.projects" in in_init

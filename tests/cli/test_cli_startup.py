"""The CLI starts fast because it imports only what the command run needs: checked by which modules
a fresh interpreter holds afterwards (times are for ``make bench-cli``, never for a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.cli.main import COMMANDS, command_of

# What no command listed here needs: scikit-learn (the demo's data), the NATS broker and its schema
# tools (the services), the HTTP client (pushes and pulls) and the services' own packages.
HEAVY = ("sklearn", "numpy", "faststream", "aiohttp", "nats", "fast_depends", "shipyard.local.supervisor",
         "shipyard.kit.asyncapi", "shipyard.client.transfer", "shipyard_repo", "shipyard_run",
         "shipyard_serving", "shipyard_lineage", "shipyard_gateway", "shipyard_model_server")
PROBE = """
import atexit, json, sys
listing = sys.argv[1]
def report():
    with open(listing, "w") as out:
        json.dump(sorted(sys.modules), out)
atexit.register(report)
sys.argv = ["shipyard", *sys.argv[2:]]
from shipyard.cli.main import app
app()
"""


def modules_after(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh interpreter has imported once ``shipyard ARGS`` has run."""
    listing = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", PROBE, str(listing), *args], capture_output=True, timeout=60,
                   env={"SHIPYARD_SERVER": "127.0.0.1:9", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    return set(json.loads(listing.read_text()))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_importing_the_cli_loads_no_command_and_nothing_heavy(tmp_path: Path) -> None:
    listing = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", "import json, sys; import shipyard.cli.main; "
                    f"json.dump(sorted(sys.modules), open({str(listing)!r}, 'w'))"], check=True, timeout=60)
    modules = set(json.loads(listing.read_text()))
    assert heavy_in(modules) == []
    assert not {"shipyard.cli.projects", "shipyard.cli.demo", "grpc"} & modules


def test_help_lists_every_command_without_importing_them(tmp_path: Path) -> None:
    modules = modules_after(tmp_path, "--help")
    assert heavy_in(modules) == []
    assert not {f"shipyard.cli.{name}" for name in ("projects", "repos", "runs", "demo", "stack")} & modules


@pytest.mark.parametrize("args", [("project", "list"), ("run", "list", "-o", "json"), ("status",),
                                  ("dataset", "list"), ("activity",)])
def test_a_command_imports_only_what_it_uses(tmp_path: Path, args: tuple[str, ...]) -> None:
    modules = modules_after(tmp_path, *args)  # nothing answers at 127.0.0.1:9: the call fails, fast
    assert "grpc" in modules  # the probe did run the command
    assert heavy_in(modules) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listing_says_what_each_command_says_of_itself(name: str) -> None:
    entry = COMMANDS[name]
    assert command_of(name, entry.load()).help == entry.help

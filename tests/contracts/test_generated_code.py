"""The committed generated code (src/shipyard/contracts) is what tools/gen_protos.py makes now,
with the generator that requirements.lock pins.

What matters is the code: the version stamps a generator writes (``GRPC_GENERATED_VERSION``, the
protobuf version and its runtime check) are compared separately, against the lock, so a stale
message or service fails with "stale" and a generator that is not the locked one says so."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src" / "shipyard" / "contracts"
STALE = "generated code is stale: run `make protos`"
LOCK = ROOT / "requirements.lock"
# Lines a generator stamps with its own version; they say who generated, not what.
_STAMP = re.compile(rb"^(GRPC_GENERATED_VERSION = .*|# Protobuf Python Version: .*)$", re.MULTILINE)
_RUNTIME_CHECK = re.compile(rb"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,[^)]*\)")


def code_of(text: bytes) -> bytes:
    """The generated code without its generator's version stamps."""
    return _RUNTIME_CHECK.sub(b"ValidateProtobufRuntimeVersion(...)", _STAMP.sub(b"<stamp>", text))


def locked(package: str) -> str:
    """The version requirements.lock pins for ``package``."""
    match = re.search(rf"^{re.escape(package)}==(\S+)$", LOCK.read_text(), re.MULTILINE | re.IGNORECASE)
    assert match, f"requirements.lock pins no {package}"
    return match.group(1)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "tools" / "gen_protos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def files_under(root: Path) -> dict[str, bytes]:
    """Relative path → bytes of every file, leaving out __pycache__."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def stale_files(expected: dict[str, bytes], actual: dict[str, bytes]) -> list[str]:
    """What differs between freshly generated (expected) and committed (actual) files."""
    problems = [f"missing from the committed code: {p}" for p in sorted(expected.keys() - actual.keys())]
    problems += [f"committed but no longer generated: {p}" for p in sorted(actual.keys() - expected.keys())]
    problems += [f"differs: {p}" for p in sorted(expected.keys() & actual.keys())
                 if code_of(expected[p]) != code_of(actual[p])]
    return problems


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("gen") / "contracts"
    load_generator().generate(out)
    return files_under(out)


def test_generated_code_is_up_to_date(generated: dict[str, bytes]) -> None:
    problems = stale_files(generated, files_under(COMMITTED))
    assert not problems, f"{STALE}\n" + "\n".join(problems)


def test_generator_makes_code_for_every_proto(generated: dict[str, bytes]) -> None:
    protos = sorted((ROOT / "proto").rglob("*.proto"))
    assert protos
    for proto in protos:
        rel = proto.relative_to(ROOT / "proto").with_suffix("")
        # shipyard.* ships as shipyard.contracts.*; the V2 inference protocol as shipyard.contracts.inference.
        rel = rel.relative_to("shipyard") if rel.parts[0] == "shipyard" else rel
        assert f"{rel}_pb2.py" in generated, f"{STALE}: nothing generated for {proto.name}"


def test_the_comparison_sees_staleness(generated: dict[str, bytes]) -> None:
    """The check can fail: a changed, a missing and an extra file are each reported."""
    some = next(iter(generated))
    changed = {**generated, some: generated[some] + b"# edited\n"}
    assert stale_files(generated, changed) == [f"differs: {some}"]
    missing = {k: v for k, v in generated.items() if k != some}
    assert stale_files(generated, missing) == [f"missing from the committed code: {some}"]
    extra = {**generated, "old/v1/gone_pb2.py": b""}
    assert stale_files(generated, extra) == ["committed but no longer generated: old/v1/gone_pb2.py"]


def test_generated_code_is_stamped_by_the_locked_generator() -> None:
    """The committed stubs were made by the grpcio-tools that requirements.lock pins (the version the
    runtime checks at import), and that is the grpcio-tools installed here."""
    tools = locked("grpcio-tools")
    assert importlib.metadata.version("grpcio-tools") == tools, "installed grpcio-tools is not the locked one"
    stamps = {m.group(1).decode() for path in COMMITTED.rglob("*_pb2_grpc.py")
              for m in re.finditer(rb"^GRPC_GENERATED_VERSION = '([^']+)'", path.read_bytes(), re.MULTILINE)}
    assert stamps == {tools}, f"{STALE}: stubs stamped {sorted(stamps)}, the lock pins grpcio-tools {tools}"


def test_the_comparison_ignores_only_version_stamps(generated: dict[str, bytes]) -> None:
    """A newer generator's stamps are not staleness; a changed line of code is."""
    name = next(p for p in generated if p.endswith("_pb2_grpc.py"))
    stamp = rb"GRPC_GENERATED_VERSION = '[^']+'"
    restamped = re.sub(stamp, b"GRPC_GENERATED_VERSION = '9.9.9'", generated[name])
    assert restamped != generated[name]
    assert stale_files(generated, {**generated, name: restamped}) == []
    edited = generated[name].replace(b"import grpc", b"import grpc as g", 1)
    assert stale_files(generated, {**generated, name: edited}) == [f"differs: {name}"]

"""The committed generated code (src/shipyard/contracts) is what tools/gen_protos.py makes now."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src" / "shipyard" / "contracts"
STALE = "generated code is stale: run `make protos`"


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
    problems += [f"differs: {p}" for p in sorted(expected.keys() & actual.keys()) if expected[p] != actual[p]]
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
        rel = proto.relative_to(ROOT / "proto" / "shipyard").with_suffix("")
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

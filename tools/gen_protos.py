"""Generate Python code for every .proto under proto/ into src/shipyard/contracts.

protoc names modules after the proto path (shipyard.repo.v1); we ship them under
shipyard.contracts, so the generated imports are rewritten once here. The Open Inference Protocol's
contract keeps its published package (``inference``, which stock clients call) and ships as
shipyard.contracts.inference.

Usage: python tools/gen_protos.py [--out DIR]   (default: src/shipyard/contracts)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
DEFAULT_OUT = ROOT / "src" / "shipyard" / "contracts"
_IMPORT = re.compile(r"^from shipyard\.(\w+)\.v1 import", re.MULTILINE)
_INFERENCE_IMPORT = re.compile(r"^from inference import", re.MULTILINE)
# protoc's top-level output folders, and where each goes under the output package.
TOP_LEVELS = (("shipyard", "."), ("inference", "inference"))


def generate(out: Path) -> None:
    """Write the generated package to ``out`` (replacing what was there)."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for area in (d for d in out.iterdir() if d.is_dir()) if out.exists() else ():
            if area.name != "__pycache__":
                shutil.rmtree(area)
        out.mkdir(parents=True, exist_ok=True)
        for top, under in TOP_LEVELS:
            generated = Path(tmp) / top
            for src in sorted(generated.rglob("*.py*")):
                dest = out / under / src.relative_to(generated)
                dest.parent.mkdir(parents=True, exist_ok=True)
                text = _IMPORT.sub(r"from shipyard.contracts.\1.v1 import", src.read_text())
                dest.write_text(_INFERENCE_IMPORT.sub("from shipyard.contracts.inference import", text))
        for package in [out, *(d for d in out.rglob("*") if d.is_dir() and d.name != "__pycache__")]:
            init = package / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated protobuf and gRPC code (tools/gen_protos.py)."""\n'
                                if package == out else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    sys.exit(main())

"""Run lineage-svc: python -m shipyard_lineage (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard_lineage.bootstrap import COLLECTIONS, wire
from shipyard_lineage.settings import SERVICE, LineageSettings

if __name__ == "__main__":
    asyncio.run(serve(LineageSettings(service=SERVICE), COLLECTIONS, wire))

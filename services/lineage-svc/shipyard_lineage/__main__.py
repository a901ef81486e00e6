"""Run lineage-svc: python -m shipyard_lineage (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard.kit.settings import Settings
from shipyard_lineage.bootstrap import COLLECTIONS, wire

if __name__ == "__main__":
    asyncio.run(serve(Settings(service="lineage"), COLLECTIONS, wire))

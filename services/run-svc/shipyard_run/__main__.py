"""Run run-svc: python -m shipyard_run (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard.kit.settings import Settings
from shipyard_run.bootstrap import COLLECTIONS, wire

if __name__ == "__main__":
    asyncio.run(serve(Settings(service="run"), COLLECTIONS, wire))

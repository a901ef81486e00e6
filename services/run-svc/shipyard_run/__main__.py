"""Run run-svc: python -m shipyard_run (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard_run.bootstrap import COLLECTIONS, wire
from shipyard_run.settings import SERVICE, RunSettings

if __name__ == "__main__":
    asyncio.run(serve(RunSettings(service=SERVICE), COLLECTIONS, wire))

"""Run serving-svc: python -m shipyard_serving (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard_serving.bootstrap import COLLECTIONS, wire
from shipyard_serving.settings import SERVICE, ServingSettings

if __name__ == "__main__":
    asyncio.run(serve(ServingSettings(service=SERVICE), COLLECTIONS, wire))

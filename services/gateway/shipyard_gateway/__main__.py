"""Run the gateway: python -m shipyard_gateway (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard.kit.settings import Settings
from shipyard_gateway.bootstrap import COLLECTIONS, wire

if __name__ == "__main__":
    asyncio.run(serve(Settings(service="gateway"), COLLECTIONS, wire))

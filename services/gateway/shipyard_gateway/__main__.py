"""Run the gateway: python -m shipyard_gateway (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard_gateway.bootstrap import COLLECTIONS, wire
from shipyard_gateway.settings import SERVICE, GatewaySettings

if __name__ == "__main__":
    asyncio.run(serve(GatewaySettings(service=SERVICE), COLLECTIONS, wire))

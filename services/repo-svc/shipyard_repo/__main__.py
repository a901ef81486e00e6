"""Run repo-svc: python -m shipyard_repo (configured by SHIPYARD_* variables)."""

import asyncio

from shipyard.kit.service import serve
from shipyard_repo.bootstrap import COLLECTIONS, wire
from shipyard_repo.settings import SERVICE, RepoSettings

if __name__ == "__main__":
    asyncio.run(serve(RepoSettings(service=SERVICE), COLLECTIONS, wire))

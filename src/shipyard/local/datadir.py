"""The data directory of an embedded Shipyard: everything it keeps lives under one folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DataDir:
    """Paths inside the data directory (default ./.shipyard)."""

    root: Path

    @property
    def admin_token(self) -> Path:
        """The first admin's API token (mode 600)."""
        return self.root / "admin-token"

    @property
    def nats(self) -> Path:
        """JetStream's file storage."""
        return self.root / "nats"

    @property
    def logs(self) -> Path:
        """One log file per process."""
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Lock and state of the running supervisor."""
        return self.root / "run"

    @property
    def state_file(self) -> Path:
        """Where the running stack says what runs where (pids, addresses)."""
        return self.run / "stack.json"

    @property
    def lock_file(self) -> Path:
        """Held by the running supervisor, so two cannot share one data directory."""
        return self.run / "lock"

    def prepare(self) -> None:
        """Create the folders."""
        for path in (self.root, self.nats, self.logs, self.run):
            path.mkdir(parents=True, exist_ok=True)

    def read_state(self) -> dict[str, Any] | None:
        """The running stack's state, or None when none was written."""
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace the state file atomically."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

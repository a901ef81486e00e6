"""The data directory of an embedded Shipyard: everything it keeps lives under one folder."""

from __future__ import annotations

import json
import os
import stat
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
    def nats_passwords(self) -> Path:
        """The bus users' passwords, made on first start (mode 600; the observer's is for your tools)."""
        return self.root / "nats-passwords.json"

    @property
    def nats_config(self) -> Path:
        """The NATS server's users and permissions, written at each start (mode 600)."""
        return self.run / "nats.conf"

    @property
    def internal_key(self) -> Path:
        """The key that signs internal calls' caller assertions (mode 600, made on first start)."""
        return self.root / "internal.key"

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
        """Create the folders, readable by the platform's user only.

        A data directory made before that rule is tightened here: the root becomes 0700 (then
        nothing under it is reachable by another user) and what lies directly in it loses its
        group and other bits.
        """
        for path in (self.root, self.nats, self.logs, self.run):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        for entry in self.root.iterdir():
            mode = entry.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                entry.chmod(stat.S_IMODE(mode) & 0o700)

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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(state, indent=2))
        tmp.chmod(0o600)  # a leftover from an older version may have had wider bits
        tmp.replace(self.state_file)

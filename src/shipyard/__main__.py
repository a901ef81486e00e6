"""python -m shipyard …: the same as the ``shipyard`` command."""

from shipyard.cli.main import app

app()

"""How commands print what they got: a table for people, or JSON / YAML for scripts (``-o``).

JSON is the API's proto3 JSON with snake_case field names (the names in proto/), every field present
(zeros and empty lists too, so a script's keys never vanish), enums by name, int64 as strings and
times as RFC 3339; a list command prints one JSON array, a get command one object. YAML holds the
same data. Tables never cut a name or an id: those columns fold onto more lines in a narrow
terminal, other columns wrap; when stdout is not a terminal nothing is wrapped at all.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

# Headers of the columns that hold names and ids: never cut, only folded in a narrow terminal.
KEY_COLUMNS = frozenset({"Name", "Id", "Model", "Run", "Version", "Endpoint", "Catalog entry", "Replica",
                         "URL", "Link", "Subject", "Fingerprint", "Metric", "Recent jobs", "Service",
                         "Address", "Path"})
WIDE = 1 << 16  # "no width limit" for Rich when stdout is a pipe or a file
WRAPPED = 12  # the narrowest a wrapping column gets before names fold instead


class Format(enum.StrEnum):
    """What ``--output`` / ``-o`` accepts."""

    table = "table"
    json = "json"
    yaml = "yaml"


OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml (for scripts).",
                                           case_sensitive=False)]
Data = Message | Sequence[Message]


def console_for(stderr: bool = False) -> Console:
    """A console that wraps to the terminal, or, writing to a pipe or a file, never wraps or cuts."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=WIDE, soft_wrap=True)


def as_data(data: Data) -> Any:
    """Plain JSON-able data: messages as proto3 JSON (snake_case, every field present)."""
    if isinstance(data, Message):
        return json_format.MessageToDict(data, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return [as_data(item) for item in data]


def render(data: Data, fmt: Format) -> str:
    """``data`` as one JSON or YAML document."""
    plain = as_data(data)
    if fmt is Format.yaml:
        import yaml  # only for -o yaml

        return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, width=WIDE))
    return json.dumps(plain, indent=2, ensure_ascii=False) + "\n"


def emit(data: Data, fmt: Format) -> bool:
    """Print ``data`` as JSON or YAML and say True; False for a table (the caller draws it)."""
    if fmt is Format.table:
        return False
    sys.stdout.write(render(data, fmt))
    return True


def count(number: int, noun: str) -> str:
    """``1 new blob``, ``2 new blobs``, ``1,200 files``."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


class Listing(Table):
    """A table that keeps its name and id columns on one line where the terminal allows (other
    columns wrap first) and folds them, never cuts them, where it does not."""

    keys: frozenset[int] = frozenset()  # the indexes of the name and id columns

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        longest = [max((_width(cell) for cell in (column.header, *column.cells)), default=0)
                   for column in self.columns]
        others = sum(min(WRAPPED, width) for i, width in enumerate(longest) if i not in self.keys)
        keys = sum(longest[i] for i in self.keys)
        if keys + others + 3 * len(self.columns) + 1 <= options.max_width:  # names fit on one line
            for i in self.keys:
                self.columns[i].no_wrap = True  # Rich then narrows the other columns instead
        yield from super().__rich_console__(console, options)


def _width(cell: object) -> int:
    return Text.from_markup(cell).cell_len if isinstance(cell, str) else 0


def table(*headers: str, **options: Any) -> Listing:
    """A table whose name and id columns (``KEY_COLUMNS``) are never cut; other columns wrap."""
    made = Listing(*headers, **options)
    for column in made.columns:
        column.overflow = "fold"
    made.keys = frozenset(i for i, header in enumerate(headers) if header in KEY_COLUMNS)
    return made


def fields(rows: Iterable[tuple[str, str]]) -> Table:
    """A two-column label/value table for one thing (``get``)."""
    made = Table(show_header=False, box=None)
    made.add_column(no_wrap=True)
    made.add_column(overflow="fold")
    for label, value in rows:
        made.add_row(f"[bold]{label}[/]", value)
    return made

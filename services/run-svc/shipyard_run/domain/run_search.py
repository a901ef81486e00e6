"""MLflow's search syntax for runs: the filter string and the order_by clauses of ``search_runs``.

It reads what MLflow's server reads and answers as it does (``SearchUtils`` in mlflow 3.17):

- a filter is comparisons joined with ``AND`` (any case); ``OR`` and parentheses are refused;
- keys are ``metrics.k`` (``metric.``), ``params.k`` (``param.``, ``parameter(s).``), ``tags.k`` (``tag.``)
  and attributes, bare or as ``attributes.k`` (``attribute.``, ``attr.``, ``run.``): ``run_id``,
  ``run_name`` (also ``"run name"``), ``status``, ``user_id`` and the numbers ``start_time`` (also
  ``created``) and ``end_time``; a key with other characters is quoted: metrics.`my metric`;
- metrics and the time attributes take ``= != > >= < <=`` and a number; params and tags ``= != LIKE
  ILIKE`` and a quoted string, or ``IS NULL`` / ``IS NOT NULL``; the text attributes ``= != LIKE ILIKE``,
  and ``run_id`` also ``IN`` / ``NOT IN`` a list of strings;
- a run without the key never matches a comparison; a NaN metric only matches ``!=``;
- order_by clauses are ``<key> [ASC|DESC]``, applied in turn, runs without the key (then NaN metrics)
  last in either direction; ties fall back to start_time descending, then run_id.

Deliberately stricter than MLflow: a dangling or doubled ``AND``, or two comparisons without one, is
refused (MLflow ignores it), and comparators that do not apply are refused when the filter is read
rather than when a run is met. A little more lenient: a whole key in backticks (`metrics.my metric`),
spaces around an order_by clause, and numbers such as ``.5e1`` are read in filters too; LIKE's % also
spans lines, as in SQL. ``tags."mlflow.runName"`` reads the run's name, as MLflow keeps the two equal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, eq, ge, gt, le, lt, ne

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.like import like_pattern
from shipyard_run.domain.tracking import RUN_NAME_TAG


@dataclass(frozen=True)
class SearchableRun:
    """What a search reads of a run, in MLflow's words (status is MLflow's: RUNNING, FINISHED…)."""

    run_id: str
    name: str
    status: str
    start_time_ms: int | None
    end_time_ms: int | None
    user: str
    experiment_id: str
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]


_NumberRead = Callable[[SearchableRun], float | None]
_TextRead = Callable[[SearchableRun], str | None]
_Test = Callable[[SearchableRun], bool]


_NUMBER_COMPARATORS = ("=", "!=", ">", ">=", "<", "<=")
_TEXT_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")
_NULL_CHECKS = ("IS NULL", "IS NOT NULL")
_LISTS = ("IN", "NOT IN")
# Params and tags: a run may lack the key, which IS [NOT] NULL asks about.
_KEYED_TEXT_COMPARATORS = _TEXT_COMPARATORS + _NULL_CHECKS
_Compare = Callable[[float, float], bool]
_COMPARE: dict[str, _Compare] = {"=": eq, "!=": ne, ">": gt, ">=": ge, "<": lt, "<=": le}
_EQUALITY: dict[str, Callable[[str, str], bool]] = {"=": eq, "!=": ne}


@dataclass(frozen=True)
class _NumberField:
    label: str
    read: _NumberRead
    comparators: tuple[str, ...] = _NUMBER_COMPARATORS


@dataclass(frozen=True)
class _TextField:
    label: str
    read: _TextRead
    comparators: tuple[str, ...]


_Field = _NumberField | _TextField

_METRIC, _PARAM, _TAG, _ATTRIBUTE = "metric", "param", "tag", "attribute"
_KEY_TYPES = {
    "metric": _METRIC, "metrics": _METRIC,
    "param": _PARAM, "params": _PARAM, "parameter": _PARAM, "parameters": _PARAM,
    "tag": _TAG, "tags": _TAG,
    "attribute": _ATTRIBUTE, "attributes": _ATTRIBUTE, "attr": _ATTRIBUTE, "run": _ATTRIBUTE,
}
_ATTRIBUTE_ALIASES = {"created": "start_time", "Created": "start_time", "run name": "run_name",
                      "Run name": "run_name", "Run Name": "run_name"}
_NUMBER_ATTRIBUTES: dict[str, _NumberRead] = {
    "start_time": attrgetter("start_time_ms"),
    "end_time": attrgetter("end_time_ms"),
}
_TEXT_ATTRIBUTES: dict[str, _TextRead] = {
    "run_id": attrgetter("run_id"),
    "run_name": attrgetter("name"),
    "status": attrgetter("status"),
    "user_id": attrgetter("user"),
}
_ATTRIBUTE_NAMES = ", ".join([*_TEXT_ATTRIBUTES, *_NUMBER_ATTRIBUTES])

# A key: a type and a name after the first dot, or a bare attribute; parts other than letters, digits,
# underscores and dots are quoted with backticks or double quotes (single quotes too after the dot).
_KEY = re.compile(r"""(?P<head>`[^`]*`|"[^"]*"|[A-Za-z_]\w*)"""
                  r"""(?:\.(?P<tail>`[^`]*`|"[^"]*"|'[^']*'|\w+(?:\.\w+)*))?""")
_WORD_COMPARATOR = re.compile(r"(?:NOT\s+IN|IS\s+NOT\s+NULL|IS\s+NULL|I?LIKE|IN)\b", re.IGNORECASE)
_SYMBOL_COMPARATOR = re.compile(r"[<>=!]+")
# Quotes inside a string are written doubled or after a backslash; like MLflow, the value keeps them as
# written (only the enclosing quotes go).
_STRING = re.compile(r"""'((?:[^'\\]|''|\\.)*)'|"((?:[^"\\]|""|\\.)*)\"""", re.DOTALL)
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_WORD = re.compile(r"\w+")
_AND = re.compile(r"AND\b", re.IGNORECASE)
_OR = re.compile(r"OR\b", re.IGNORECASE)
_OPEN, _CLOSE, _COMMA = re.compile(r"\("), re.compile(r"\)"), re.compile(",")
_DIRECTION = re.compile(r"\s+(?P<direction>\w+)")
_QUOTE_HINT = "quote a key with other characters in backticks, e.g. metrics.`val-loss`"


def _unquoted(text: str) -> tuple[str, bool]:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "`\"'":
        return text[1:-1], True
    return text, False


def _field(field_name: str, key_text: str, head: str, tail: str | None) -> _Field:
    """The field a key names; InvalidArgument naming the key when it names none we can search."""
    head, quoted = _unquoted(head)
    if tail is not None:
        key_type, name = head, _unquoted(tail)[0]
    elif quoted and "." in head:  # the whole key in backticks: `metrics.my metric`
        key_type, name = head.split(".", 1)
    else:
        key_type, name = _ATTRIBUTE, head
    if key_type in ("dataset", "datasets"):
        raise InvalidArgument(field_name, f"{key_text!r}: searching runs by their datasets is not supported")
    kind = _KEY_TYPES.get(key_type)
    if kind is None:
        raise InvalidArgument(field_name, f"{key_text!r}: unknown key type {key_type!r}; keys are "
                                          "metrics.<name>, params.<name>, tags.<name> or an attribute")
    if not name:
        raise InvalidArgument(field_name, f"{key_text!r}: the key has no name")
    if kind == _METRIC:
        return _NumberField(f"metric {name!r}", lambda run: run.metrics.get(name))
    if kind == _PARAM:
        return _TextField(f"param {name!r}", lambda run: run.params.get(name), _KEYED_TEXT_COMPARATORS)
    if kind == _TAG:
        return _TextField(f"tag {name!r}", _tag_read(name), _KEYED_TEXT_COMPARATORS)
    return _attribute(field_name, key_text, _ATTRIBUTE_ALIASES.get(name, name))


def _tag_read(name: str) -> _TextRead:
    if name == RUN_NAME_TAG:
        return lambda run: run.name or run.tags.get(name)
    return lambda run: run.tags.get(name)


def _attribute(field_name: str, key_text: str, name: str) -> _Field:
    if name in _NUMBER_ATTRIBUTES:
        return _NumberField(f"attribute {name!r}", _NUMBER_ATTRIBUTES[name])
    if name in _TEXT_ATTRIBUTES:
        # Of the text attributes MLflow compares only run_id with a list.
        also = _LISTS if name == "run_id" else ()
        return _TextField(f"attribute {name!r}", _TEXT_ATTRIBUTES[name], _TEXT_COMPARATORS + also)
    if name == "artifact_uri":
        raise InvalidArgument(field_name, f"{key_text!r}: searching runs by artifact_uri is not supported")
    raise InvalidArgument(field_name, f"{key_text!r}: unknown attribute {name!r}; the attributes are "
                                      f"{_ATTRIBUTE_NAMES}")


@dataclass(frozen=True)
class _Literal:
    """A value as written: a number, a quoted string, a list of strings, or an unquoted word."""

    kind: str  # "number", "string", "list", "word" or "none" (after IS [NOT] NULL)
    text: str = ""
    items: tuple[str, ...] = ()


class _Cursor:
    """The filter text and how far it has been read."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def skip_space(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip_space()
        found = pattern.match(self.text, self.at)
        if found:
            self.at = found.end()
        return found

    def done(self) -> bool:
        self.skip_space()
        return self.at == len(self.text)

    def rest(self) -> str:
        self.skip_space()
        rest = self.text[self.at :]
        return rest if len(rest) <= 40 else rest[:40] + "…"


@dataclass(frozen=True)
class _Condition:
    text: str
    test: _Test


@dataclass(frozen=True)
class RunFilter:
    """A parsed filter: the runs it matches are those every comparison holds for."""

    tests: tuple[_Test, ...]

    def matches(self, run: SearchableRun) -> bool:
        """Whether ``run`` meets every comparison of the filter."""
        # A plain loop, not all() over a generator: it runs for every run of every search.
        for test in self.tests:  # noqa: SIM110
            if not test(run):
                return False
        return True


def parse_filter(text: str) -> RunFilter:
    """Read an MLflow filter string; "" matches every run. InvalidArgument("filter", …) quoting the part
    that is malformed or not supported."""
    cursor = _Cursor(text)
    if cursor.done():
        return RunFilter(())
    conditions = [_condition(cursor)]
    while not cursor.done():
        if cursor.take(_OR):
            raise InvalidArgument("filter", f"only AND may join comparisons (MLflow's search has no OR): "
                                            f"{text!r}")
        if not cursor.take(_AND):
            raise InvalidArgument("filter", f"expected AND or the end of the filter after "
                                            f"{conditions[-1].text!r}, found {cursor.rest()!r}")
        conditions.append(_condition(cursor))
    return RunFilter(tuple(condition.test for condition in conditions))


def _condition(cursor: _Cursor) -> _Condition:
    cursor.skip_space()
    start = cursor.at
    if cursor.done() or cursor.take(_AND):
        raise InvalidArgument("filter", f"AND must stand between two comparisons: {cursor.text!r}")
    key = cursor.take(_KEY)
    if key is None:
        found = cursor.rest()
        why = "parentheses are not supported, join comparisons with AND" if found.startswith("(") else (
            "expected a key such as metrics.<name>")
        raise InvalidArgument("filter", f"{why}, found {found!r}")
    comparator = _comparator(cursor, key[0])
    literal = _literal(cursor, comparator)
    text = cursor.text[start : cursor.at]
    field = _field("filter", key[0], key["head"], key["tail"])
    return _Condition(text, _test(field, comparator, literal, text))


def _comparator(cursor: _Cursor, key_text: str) -> str:
    cut = cursor.at < len(cursor.text) and not cursor.text[cursor.at].isspace()
    found = cursor.take(_WORD_COMPARATOR) or cursor.take(_SYMBOL_COMPARATOR)
    if found is None:
        # A key cut short by a character it may not hold unquoted (metrics.val-loss) deserves the hint.
        hint = f" ({_QUOTE_HINT})" if cut else ""
        raise InvalidArgument("filter", f"expected a comparator after {key_text!r}, found "
                                        f"{cursor.rest()!r}{hint}")
    return " ".join(found[0].upper().split())


def _literal(cursor: _Cursor, comparator: str) -> _Literal:
    if comparator in _NULL_CHECKS:
        return _Literal("none")
    if comparator in _LISTS:
        return _list(cursor, comparator)
    if found := cursor.take(_STRING):
        return _Literal("string", _string_of(found))
    if found := cursor.take(_NUMBER):
        return _Literal("number", found[0])
    if found := cursor.take(_WORD):
        return _Literal("word", found[0])
    raise InvalidArgument("filter", f"expected a value after {comparator!r}, found {cursor.rest()!r}")


def _string_of(found: re.Match[str]) -> str:
    single, double = found.groups()
    return single if single is not None else double


def _list(cursor: _Cursor, comparator: str) -> _Literal:
    if not cursor.take(_OPEN):
        raise InvalidArgument("filter", f"{comparator} takes a list in parentheses, e.g. ('a', 'b'); found "
                                        f"{cursor.rest()!r}")
    items: list[str] = []
    while not cursor.take(_CLOSE):
        if items and not cursor.take(_COMMA):
            raise InvalidArgument("filter", f"expected ',' or ')' in the list after {comparator}, found "
                                            f"{cursor.rest()!r}")
        if items and cursor.take(_CLOSE):  # a trailing comma, as MLflow allows
            break
        item = cursor.take(_STRING)
        if item is None:
            raise InvalidArgument("filter", f"a list after {comparator} holds quoted strings only, found "
                                            f"{cursor.rest()!r}")
        items.append(_string_of(item))
    if not items:
        raise InvalidArgument("filter", f"the list after {comparator} is empty")
    return _Literal("list", items=tuple(items))


def _test(field: _Field, comparator: str, literal: _Literal, text: str) -> _Test:
    """The test of one comparison, its comparator and value checked against the field they apply to."""
    if comparator not in field.comparators:
        raise InvalidArgument("filter", f"{text!r}: {field.label} takes one of "
                                        f"{', '.join(field.comparators)}")
    if comparator in _NULL_CHECKS:
        return _null_test(field.read, comparator == "IS NULL")
    if isinstance(field, _NumberField):
        if literal.kind != "number":
            raise InvalidArgument("filter", f"{text!r}: {field.label} is compared with a number")
        return _number_test(field.read, _COMPARE[comparator], float(literal.text))
    if comparator in _LISTS:
        return _membership_test(field.read, frozenset(literal.items), comparator == "IN")
    if literal.kind != "string":
        raise InvalidArgument("filter", f"{text!r}: {field.label} is compared with a quoted string, "
                                        "'like this' or \"like this\"")
    if comparator in _EQUALITY:
        return _text_test(field.read, _EQUALITY[comparator], literal.text)
    return _like_test(field.read, like_pattern(literal.text, comparator == "ILIKE"))


def _null_test(read: _NumberRead | _TextRead, null: bool) -> _Test:
    return lambda run: (read(run) is None) == null


def _number_test(read: _NumberRead, compare: _Compare, value: float) -> _Test:
    def test(run: SearchableRun) -> bool:
        have = read(run)
        return have is not None and compare(have, value)

    return test


def _text_test(read: _TextRead, compare: Callable[[str, str], bool], value: str) -> _Test:
    def test(run: SearchableRun) -> bool:
        have = read(run)
        return have is not None and compare(have, value)

    return test


def _membership_test(read: _TextRead, values: frozenset[str], inside: bool) -> _Test:
    def test(run: SearchableRun) -> bool:
        have = read(run)
        return have is not None and (have in values) == inside

    return test


def _like_test(read: _TextRead, pattern: re.Pattern[str]) -> _Test:
    def test(run: SearchableRun) -> bool:
        have = read(run)
        return have is not None and pattern.fullmatch(have) is not None

    return test




@dataclass(frozen=True)
class _Ordering:
    read: _NumberRead | _TextRead
    descending: bool

    def applied(self, runs: list[SearchableRun]) -> list[SearchableRun]:
        """``runs`` sorted by this key, those with a value first, then NaN, then those without one, in
        either direction; runs that tie keep their order (the sort is stable, also when reversed)."""
        values = [self.read(run) for run in runs]
        # NaN is the one value unequal to itself.
        valued = {index: value for index, value in enumerate(values) if value is not None and value == value}
        ordered = [runs[index] for index in sorted(valued, key=valued.__getitem__, reverse=self.descending)]
        if len(valued) < len(runs):
            lacking = [(runs[index], value) for index, value in enumerate(values) if index not in valued]
            ordered += [run for run, value in lacking if value is not None]  # NaN
            ordered += [run for run, value in lacking if value is None]
        return ordered


@dataclass(frozen=True)
class RunOrder:
    """Parsed order_by clauses, applied in turn over MLflow's default order."""

    orderings: tuple[_Ordering, ...]

    def sorted(self, runs: Iterable[SearchableRun]) -> list[SearchableRun]:
        """``runs`` in this order; ties keep MLflow's default order: start_time descending, then run_id."""
        ordered = _DEFAULT_ORDER.applied(sorted(runs, key=attrgetter("run_id")))
        # Each sort is stable, so sorting by the last clause first leaves the first one deciding.
        for ordering in reversed(self.orderings):
            ordered = ordering.applied(ordered)
        return ordered


_DEFAULT_ORDER = _Ordering(_NUMBER_ATTRIBUTES["start_time"], descending=True)


def parse_order_by(clauses: Sequence[str]) -> RunOrder:
    """Read MLflow order_by clauses, ``<key> [ASC|DESC]`` each; InvalidArgument("order_by", …) quoting a
    malformed one."""
    return RunOrder(tuple(_ordering(clause) for clause in clauses))


def _ordering(clause: str) -> _Ordering:
    text = clause.strip()
    key = _KEY.match(text)
    if key is None:
        raise InvalidArgument("order_by", f"{clause!r}: expected '<key> [ASC|DESC]', "
                                          "e.g. 'metrics.loss DESC'")
    direction = _DIRECTION.fullmatch(text, key.end())
    if key.end() < len(text) and direction is None:
        after = text[key.end()]
        hint = " (one key per clause)" if after == "," else "" if after.isspace() else f" ({_QUOTE_HINT})"
        raise InvalidArgument("order_by", f"{clause!r}: expected '<key> [ASC|DESC]'{hint}")
    descending = direction is not None and direction["direction"].upper() == "DESC"
    if direction is not None and not descending and direction["direction"].upper() != "ASC":
        raise InvalidArgument("order_by", f"{clause!r}: the direction is ASC or DESC, not "
                                          f"{direction['direction']!r}")
    field = _field("order_by", key[0], key["head"], key["tail"])
    return _Ordering(field.read, descending)

"""Labels and aliases: MLflow's registered-model and model-version tags, and its aliases.

A label is a key-value tag on a repo or one of its versions; an alias names one version of a repo
("champion" -> 3), so ``models:/<repo>@champion`` resolves through it. The limits are MLflow's
(mlflow/utils/validation.py), plus bounds of our own that keep a repo's document and the event that
carries it (RepoUpdated, under NATS' 1 MiB message limit) small.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from shipyard.kit.errors import InvalidArgument
from shipyard.kit.rules import check_text

LABEL_KEY_MAX = 250  # MLflow's MAX_MODEL_REGISTRY_TAG_KEY_LENGTH
LABEL_VALUE_MAX = 100_000  # MLflow's MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
LABELS_MAX = 100
LABELS_BYTES_MAX = 256 << 10  # all of one repo's (or version's) labels together, keys and values, UTF-8
ALIAS_MAX = 255  # MLflow's MAX_REGISTERED_MODEL_ALIAS_LENGTH
ALIASES_MAX = 100
_ALIAS = re.compile(r"[A-Za-z0-9_-]+")
_VERSION_LIKE = re.compile(r"[vV][0-9]+")  # MLflow reserves v<number>: it reads as a version


def relabel(labels: Mapping[str, str], set_: Mapping[str, str], remove: Sequence[str]) -> dict[str, str]:
    """``labels`` with ``set_`` added or replaced and the keys in ``remove`` taken away (a key that is
    not there is nothing to remove); InvalidArgument naming the field (``set``, ``remove``) when a
    key or value breaks the rules or the labels would be too many or too large."""
    for key, value in set_.items():
        _check_key("set", key)
        check_text(f"set[{key!r}]", value, LABEL_VALUE_MAX)
    for key in remove:
        _check_key("remove", key)
        if key in set_:
            raise InvalidArgument("remove", f"label {key!r} is both set and removed; choose one")
    changed = {k: v for k, v in labels.items() if k not in remove}
    changed.update(set_)
    if len(changed) > LABELS_MAX:
        raise InvalidArgument("set", f"at most {LABELS_MAX} labels (this would make {len(changed)})")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in changed.items())
    if size > LABELS_BYTES_MAX:
        raise InvalidArgument("set", f"all labels together must be at most {LABELS_BYTES_MAX >> 10} KiB "
                                     f"(this would make {size:,} bytes)")
    return changed


def _check_key(field: str, key: str) -> None:
    if not key:
        raise InvalidArgument(field, "a label key must not be empty")
    if len(key) > LABEL_KEY_MAX:
        raise InvalidArgument(field, f"label key {key[:40]!r}… must be at most {LABEL_KEY_MAX} characters "
                                     f"(got {len(key)})")
    check_text(field, key, LABEL_KEY_MAX, multiline=False)


def check_alias(alias: str) -> str:
    """An alias: 1-255 letters, digits, '_' or '-'; not 'latest' (any case), not a number and not
    like 'v12' — those already name versions."""
    if not alias:
        raise InvalidArgument("alias", "must not be empty")
    if len(alias) > ALIAS_MAX:
        raise InvalidArgument("alias", f"must be at most {ALIAS_MAX} characters (got {len(alias)})")
    if not _ALIAS.fullmatch(alias):
        raise InvalidArgument("alias", f"{alias[:80]!r}: may contain only letters, digits, '_' and '-'")
    if alias.lower() == "latest":
        raise InvalidArgument("alias", "'latest' is reserved: it always names the newest version")
    if alias.isdigit() or _VERSION_LIKE.fullmatch(alias):
        raise InvalidArgument("alias", f"{alias!r} is reserved: it reads as a version number")
    return alias


def realias(aliases: Mapping[str, int], alias: str, version: int) -> dict[str, int]:
    """``aliases`` with ``alias`` naming ``version`` (moved if it named another), or removed when
    ``version`` is 0; InvalidArgument past the limit of aliases."""
    changed = {a: v for a, v in aliases.items() if a != alias}
    if version:
        changed[alias] = version
    if len(changed) > ALIASES_MAX:
        raise InvalidArgument("alias", f"at most {ALIASES_MAX} aliases per repo")
    return changed


def without_version(aliases: Mapping[str, int], version: int) -> dict[str, int]:
    """``aliases`` less those naming ``version`` (deleted: its aliases go with it)."""
    return {a: v for a, v in aliases.items() if v != version}

"""What the source rule tests share: checking a source for a dataset, a referenced dataset or a
code repo, and the InvalidArgument a refused call raises."""

from __future__ import annotations

import pytest
from shipyard_repo.domain.sources import GitSource, RepoKind, Source, Versioning, check_source

from shipyard.kit.errors import InvalidArgument

FSX_DNS = "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"


def refused(fn: object, *args: object, **kwargs: object) -> InvalidArgument:
    """The InvalidArgument that calling ``fn`` raises."""
    assert callable(fn)
    with pytest.raises(InvalidArgument) as info:
        fn(*args, **kwargs)
    return info.value


def dataset(source: Source, versioning: Versioning = Versioning.DVS, allow_private: bool = False) -> Source:
    return check_source(RepoKind.DATASET, versioning, source, allow_private=allow_private)


def referenced(source: Source, allow_private: bool = False) -> Source:
    return dataset(source, Versioning.NONE, allow_private)


def code(source: GitSource, allow_private: bool = False) -> Source:
    return check_source(RepoKind.CODE, Versioning.NONE, source, allow_private=allow_private)

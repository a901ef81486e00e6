"""What defines a local environment: Python versions, requirement lines, the digest."""

from __future__ import annotations

import pytest

from shipyard.kit.environments import check_python, check_requirements, environment_digest, platform_python
from shipyard.kit.errors import InvalidArgument


def test_requirement_lines_are_kept_in_order_without_blanks_and_comments() -> None:
    lines = ["pandas==2.2.3", "", "# pinned", "scikit-learn<1.4  # old API",
             "numpy ; python_version >= '3.9'"]
    assert check_requirements(lines, "image.requirements") == (
        "pandas==2.2.3", "scikit-learn<1.4", "numpy ; python_version >= '3.9'")


@pytest.mark.parametrize(
    ("line", "problem"),
    [("pandas>=>2", "is not a requirement pip can read"),
     ("--index-url https://evil.example/simple", "options are not allowed"),
     ("-e git+https://example.org/x.git", "options are not allowed"),
     ("secrets @ file:///etc/shadow", "direct references (name @ URL) are not allowed"),
     ("tool @ git+https://example.org/tool.git", "direct references (name @ URL) are not allowed")],
)
def test_what_pip_cannot_read_or_what_escapes_the_index_is_refused_by_line(line: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_requirements(["numpy", line], "image.requirements")
    assert refused.value.field == "image.requirements[1]"
    assert problem in refused.value.problem


def test_python_is_major_minor() -> None:
    assert check_python("3.11", "image.python") == "3.11"
    assert check_python("", "image.python") == ""
    for bad in ("3", "3.11.2", "python3", "2.7x"):
        with pytest.raises(InvalidArgument):
            check_python(bad, "image.python")


def test_the_digest_covers_python_requirements_and_their_order() -> None:
    base = environment_digest("", ("numpy", "pandas"))
    assert base == environment_digest(platform_python(), ("numpy", "pandas"))
    others = (environment_digest("3.10", ("numpy", "pandas")), environment_digest("", ("pandas", "numpy")),
              environment_digest("", ("numpy",)))
    assert len({base, *others}) == 4

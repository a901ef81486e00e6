"""The pure naming and text rules of repo-svc (domain/names.py)."""

from __future__ import annotations

import pytest
from shipyard_repo.domain.names import NAME_MAX, check_name, check_text, check_url

from shipyard.kit.errors import InvalidArgument

FIELD = "thing.name"


@pytest.mark.parametrize("name", ["a", "A", "0", "mnist", "my-project", "my_project", "v1.2",
                                  "a" * NAME_MAX, "Z9-._"])
def test_good_names_are_returned_unchanged(name: str) -> None:
    assert check_name(FIELD, name) == name


@pytest.mark.parametrize("name", [
    pytest.param("", id="empty"),
    pytest.param("a" * (NAME_MAX + 1), id="64-chars"),
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("a/b", id="slash"),
    pytest.param("/", id="only-slash"),
    pytest.param("bell\x07", id="bell"),
    pytest.param("line\n", id="trailing-newline"),
    pytest.param("a\nb", id="inner-newline"),
    pytest.param("tab\t", id="tab"),
    pytest.param("nul\x00", id="nul"),
    pytest.param("-leading-dash", id="leading-dash"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("_under", id="leading-underscore"),
    pytest.param("with space", id="space"),
    pytest.param(" lead", id="leading-space"),
    pytest.param("trail ", id="trailing-space"),
    pytest.param("caf\u00e9", id="latin-accent"),
    pytest.param("\u043f\u0440\u043e\u0435\u043a\u0442", id="cyrillic"),
    pytest.param("\u30d7\u30ed\u30b8\u30a7\u30af\u30c8", id="japanese"),
    pytest.param("\uff41bc", id="fullwidth-a"),
    pytest.param("a\u200bb", id="zero-width-space"),
    pytest.param("a:b", id="colon"),
    pytest.param("a@b", id="at"),
])
def test_bad_names_are_invalid_and_name_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_name(FIELD, name)
    assert caught.value.field == FIELD
    assert caught.value.message.startswith(f"{FIELD}: ")


def test_overlong_name_message_gives_the_length() -> None:
    with pytest.raises(InvalidArgument, match="got 300"):
        check_name(FIELD, "a" * 300)


@pytest.mark.parametrize("text", ["", "plain", "two\nlines", "tab\there", "crlf\r\n", "\u00fcnicode \u2713"])
def test_multiline_text_allows_newlines_and_tabs(text: str) -> None:
    assert check_text("t", text, 100) == text


@pytest.mark.parametrize("text", ["bell\x07", "esc\x1b[31m", "nul\x00", "del\x7f"])
def test_text_rejects_other_control_characters(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_text("t", text, 100)
    assert caught.value.field == "t"


def test_single_line_text_rejects_newlines() -> None:
    with pytest.raises(InvalidArgument):
        check_text("t", "a\nb", 100, multiline=False)


def test_text_limit_is_inclusive() -> None:
    assert check_text("t", "x" * 10, 10) == "x" * 10
    with pytest.raises(InvalidArgument, match="at most 10"):
        check_text("t", "x" * 11, 10)


@pytest.mark.parametrize("url", ["", "http://example.com", "https://example.com/img.png?x=1",
                                 "http://127.0.0.1:8080/a"])
def test_good_urls(url: str) -> None:
    assert check_url("u", url) == url


@pytest.mark.parametrize("url", [
    pytest.param("ftp://example.com/x.png", id="ftp"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("http://", id="no-host"),
    pytest.param("https:///path-only", id="empty-host"),
    pytest.param("example.com/x.png", id="no-scheme"),
    pytest.param("file:///etc/passwd", id="file"),
    pytest.param("data:image/png;base64,AAAA", id="data"),
    pytest.param("http://exa mple.com/\n", id="newline"),
    pytest.param("https://example.com/" + "a" * 2048, id="too-long"),
])
def test_bad_urls_name_the_field(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_url("u", url)
    assert caught.value.field == "u"




@pytest.mark.parametrize("url", ["http://:8080/a.png", "https://user@/a.png"], ids=["port-only", "user-only"])
def test_urls_with_a_port_or_user_but_no_host_are_invalid(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_url("u", url)
    assert caught.value.field == "u"

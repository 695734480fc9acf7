"""Templates in the sandbox, the member's language's plural forms and formats, SMS length."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.messaging.domain import (
    Encoding,
    TemplateProblem,
    check,
    language_of,
    money_text,
    names_used,
    points_text,
    render,
    sms_length,
)

NBSP = "\u00a0"


def russian_points_word(n: int) -> str:
    """The grammar book's rule, written out independently of CLDR."""
    if n % 10 == 1 and n % 100 != 11:
        return "балл"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "балла"
    return "баллов"


@pytest.mark.parametrize(
    ("count", "words"),
    [
        (1, "1 балл"),
        (2, "2 балла"),
        (5, "5 баллов"),
        (11, "11 баллов"),
        (21, "21 балл"),
        (22, "22 балла"),
        (112, "112 баллов"),
        (1234, "1 234 балла"),
        (0, "0 баллов"),
    ],
)
def test_points_in_russian(count: int, words: str) -> None:
    assert points_text(count, "ru").replace(NBSP, " ") == words


@given(st.integers(min_value=0, max_value=10**9))
def test_russian_plural_forms_follow_the_grammar(count: int) -> None:
    assert points_text(count, "ru").split(NBSP)[-1] == russian_points_word(count)


def test_points_in_english_and_a_programs_own_words() -> None:
    assert points_text(1, "en") == f"1{NBSP}point"
    assert points_text(1234, "en") == f"1,234{NBSP}points"
    stars = {"one": "звезда", "few": "звезды", "many": "звёзд"}
    assert points_text(3, "ru", stars) == f"3{NBSP}звезды"


def test_money_in_each_language() -> None:
    assert money_text(123450, "RUB", "ru").replace(NBSP, " ") == "1 234,50 ₽"
    assert money_text(123450, "USD", "en") == "$1,234.50"
    assert money_text(500, "JPY", "en") == "¥500"  # no minor units


def test_a_template_renders_in_the_members_language() -> None:
    source = "{{ name }}, вам начислено {{ amount|points }} за покупку на {{ total|money('RUB') }}"
    said = render(source, "text", "ru", {"name": "Анна", "amount": 5, "total": 123450})
    assert said.replace(NBSP, " ") == "Анна, вам начислено 5 баллов за покупку на 1 234,50 ₽"
    english = "{{ amount|points }} on {{ day|date }}"
    assert render(english, "text", "en", {"amount": 2, "day": date(2026, 12, 5)}) == (
        f"2{NBSP}points on December 5, 2026"
    )
    assert "декабря" in render("{{ day|date }}", "text", "ru", {"day": date(2026, 12, 5)})
    at = render(
        "{{ at|date('short') }}", "text", "en", {"at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC)}
    )
    assert at.startswith("1/2/26")
    assert render("{{ n|plural('балл', 'балла', 'баллов') }}", "sms", "ru", {"n": 3}) == "балла"


def test_html_is_escaped_and_text_is_not() -> None:
    variables = {"name": "<b>Tom & Jerry</b>"}
    assert render("{{ name }}", "html", "en", variables) == "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"
    assert render("{{ name }}", "sms", "en", variables) == "<b>Tom & Jerry</b>"


def test_an_undefined_name_is_an_error_with_its_line() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render("Hello\n{{ member.first_name }}\n{{ nobody }}", "text", "en", {"member": {}})
    assert caught.value.line == 2 and caught.value.part == "text"


def test_the_sandbox_refuses_pythons_internals() -> None:
    with pytest.raises(TemplateProblem, match="not allowed"):
        render("{{ ''.__class__.__mro__ }}", "text", "en", {})
    with pytest.raises(TemplateProblem, match="not allowed"):
        render("{{ items.append(1) }}", "text", "en", {"items": []})


def test_saving_checks_syntax_and_variables_naming_the_line() -> None:
    with pytest.raises(TemplateProblem) as syntax:
        check("Hello\n{% if %}", "html", ["name"])
    assert syntax.value.line == 2 and syntax.value.part == "html"
    with pytest.raises(TemplateProblem) as unknown:
        check("{{ name }}\n\n{{ balance }}", "text", ["name"])
    assert unknown.value.line == 3 and "'balance'" in unknown.value.message
    assert str(unknown.value) == "text, line 3: unknown template variable 'balance'"
    # Names a template sets itself are not asked of the caller.
    check(
        "{% set total = 5 %}{% for line in lines %}{{ line }}{% endfor %}{{ total }}",
        "text",
        ["lines"],
    )
    assert names_used("{{ a }}{{ b.c }}\n{{ a }}") == {"a": 1, "b": 1}


def test_the_language_falls_back_to_the_programs() -> None:
    assert language_of("en", ["ru", "en"], "ru") == "en"
    assert language_of("de", ["ru", "en"], "en") == "en"
    assert language_of(None, ["ru"], "en") == "ru"
    with pytest.raises(ValueError):
        language_of("ru", [], "ru")


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, Encoding.GSM7, 160, 1),
        ("a" * 161, Encoding.GSM7, 161, 2),
        ("a" * 306, Encoding.GSM7, 306, 2),
        ("a" * 307, Encoding.GSM7, 307, 3),
        ("€" * 80, Encoding.GSM7, 160, 1),  # the extension table takes two septets
        ("€" * 81, Encoding.GSM7, 162, 2),
        ("б" * 70, Encoding.UCS2, 70, 1),
        ("б" * 71, Encoding.UCS2, 71, 2),
        ("б" * 134, Encoding.UCS2, 134, 2),
        ("б" * 135, Encoding.UCS2, 135, 3),
        ("Hi 😀", Encoding.UCS2, 5, 1),  # an emoji is two UTF-16 units
        ("", Encoding.GSM7, 0, 1),
    ],
)
def test_sms_length(text: str, encoding: Encoding, units: int, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


def test_one_cyrillic_letter_makes_the_whole_sms_ucs2() -> None:
    assert sms_length("Your code is 1234. Ваш код").encoding is Encoding.UCS2

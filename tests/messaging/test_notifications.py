"""The shipped texts of every notification: each checks and renders in both languages."""

import pytest

from kopilka.messaging.domain import LANGUAGES, Part, check, render, sms_length
from kopilka.messaging.notifications import KINDS, Purpose

CASES = [
    (kind.key, language, part)
    for kind in KINDS.values()
    for language in LANGUAGES
    for part in kind.defaults[language]
]


@pytest.mark.parametrize(("key", "language", "part"), CASES)
def test_every_shipped_text_checks_and_renders(key: str, language: str, part: Part) -> None:
    kind = KINDS[key]
    source = kind.defaults[language][part]
    check(source, part, kind.allowed())
    said = render(source, part, language, kind.sample)
    assert said and "{{" not in said
    if part is Part.SMS:
        assert sms_length(said).segments <= 2, said


def test_every_kind_ships_every_part_but_html_in_both_languages() -> None:
    wanted = {Part.SUBJECT, Part.TEXT, Part.SMS, Part.PUSH_TITLE, Part.PUSH_BODY}
    for kind in KINDS.values():
        assert set(kind.defaults) == set(LANGUAGES), kind.key
        for language in LANGUAGES:
            assert set(kind.defaults[language]) == wanted, (kind.key, language)


def test_what_is_on_and_what_needs_consent() -> None:
    assert not KINDS["points_earned"].on_by_default  # the default: off
    assert all(k.on_by_default for key, k in KINDS.items() if key != "points_earned")
    # A survey asks something of the member on the program's initiative: marketing too.
    marketing = {k for k, v in KINDS.items() if v.purpose is Purpose.MARKETING}
    assert marketing == {"broadcast", "survey_invitation"}


def test_the_texts_speak_russian_grammar() -> None:
    expiring = KINDS["points_expiring"]
    said = render(expiring.defaults["ru"][Part.TEXT], Part.TEXT, "ru", expiring.sample)
    assert "400\u00a0баллов сгорят 31 января 2027" in said and "через 7 дней" in said
    one_day = expiring.sample | {"days": 1, "amount": 21}
    said = render(expiring.defaults["ru"][Part.TEXT], Part.TEXT, "ru", one_day)
    assert "21\u00a0балл сгорит" in said and "через 1 день" in said
    earned = KINDS["points_earned"]
    english = render(earned.defaults["en"][Part.TEXT], Part.TEXT, "en", earned.sample)
    assert english == (
        "Анна, your purchase of RUB12,500.00 earned 125\u00a0points. "
        "Your balance: 1,250\u00a0points."
    )

"""Every text of the pages has its Russian translation, and the catalogues are well formed."""

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from kopilka.web.i18n import catalogue_files, translations

WEB = Path(__file__).parents[2] / "src" / "kopilka" / "web"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def page_texts() -> dict[str, set[str]]:
    """Each text the pages show (``_``, ``gettext``, ``ngettext``) → where it is used."""
    found: dict[str, set[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(WEB),
        METHODS,
        options_map=OPTIONS,
        keywords={"_": None, "gettext": (2,), "ngettext": (1, 2)},
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, set()).add(filename)
    return found


def russian() -> dict[str, object]:
    merged: dict[str, object] = {}
    for path in catalogue_files("ru"):
        with path.open("rb") as handle:
            for item in read_po(handle, locale="ru"):
                if not item.id:
                    continue
                if isinstance(item.id, tuple):  # a plural: each English form has the forms
                    for form in item.id:
                        merged[form] = item.string
                else:
                    merged[item.id] = item.string
    return merged


def test_every_text_of_the_pages_is_translated_into_russian() -> None:
    translated = russian()
    missing = {
        text: sorted(places)
        for text, places in page_texts().items()
        if not translated.get(text) and text not in translated.values()
    }
    assert not missing, f"{len(missing)} texts lack a Russian translation: {missing}"


def test_one_text_has_one_translation_across_the_catalogues() -> None:
    seen: dict[object, tuple[object, str]] = {}
    clashes = []
    for path in catalogue_files("ru"):
        with path.open("rb") as handle:
            for item in read_po(handle, locale="ru"):
                if not item.id or not item.string:
                    continue
                known = seen.setdefault(item.id, (item.string, path.name))
                if known[0] != item.string:
                    clashes.append(
                        f"{item.id!r}: {known[1]} {known[0]!r} ≠ {path.name} {item.string!r}"
                    )
    assert not clashes, "\n".join(clashes)


def test_the_check_finds_the_texts_of_templates_and_code() -> None:
    texts = page_texts()
    assert "Skip to content" in texts  # a template's
    assert "Wrong e-mail, password or code." in texts  # a page's code
    assert "Dashboard" in texts  # the navigation's


def test_a_russian_plural_has_its_three_forms() -> None:
    catalog = translations("ru")
    forms = [
        catalog.ngettext("%(num)s point", "%(num)s points", n) % {"num": n} for n in (1, 3, 5, 21)
    ]
    assert forms == ["1 балл", "3 балла", "5 баллов", "21 балл"]

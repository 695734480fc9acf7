"""What a message says, worked out without I/O: templates rendered in a sandbox, in the
member's language, and the length of an SMS.

Templates are Jinja2 documents that marketers write, so they run in Jinja2's immutable
sandbox (no attribute of Python's internals, no changing the data they are given) with
every undefined name an error rather than an empty string. Numbers, money, dates and plural
forms follow the language's rules through Babel: ``{{ 5|points }}`` is "5 баллов" in
Russian and "5 points" in English, ``{{ 123450|money('RUB') }}`` is "1 234,50 ₽".
"""

import math
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from functools import cache, lru_cache, wraps
from typing import Any, cast

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, get_currency_precision
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

# The word for points by plural form (CLDR categories: Russian has one/few/many/other,
# English one/other). A program that names its points otherwise passes its own words.
POINT_WORDS: dict[str, dict[str, str]] = {
    "ru": {"one": "балл", "few": "балла", "many": "баллов", "other": "балла"},
    "en": {"one": "point", "other": "points"},
}


class Part(StrEnum):
    """The variants one message kind has; each is a template of its own."""

    SUBJECT = "subject"
    HTML = "html"
    TEXT = "text"
    SMS = "sms"
    PUSH_TITLE = "push_title"
    PUSH_BODY = "push_body"


class Channel(StrEnum):
    """Where a message goes: a mailbox, a phone, a browser, or the member app's inbox."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    INBOX = "inbox"


# Parts shown as HTML are escaped; the others are plain text (an SMS must not say "&amp;").
HTML_PARTS = frozenset({Part.HTML})


@dataclass(frozen=True)
class TemplateProblem(Exception):
    """A template that cannot be rendered: which part, which line (None: not known), why."""

    part: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.part}, line {self.line}" if self.line else self.part
        return f"{where}: {self.message}"


def language_of(wanted: str | None, available: Iterable[str], fallback: str) -> str:
    """The language to write in: the member's if a version exists in it, else the program's
    (``fallback``), else any available one."""
    choices = list(available)
    for language in (wanted, fallback, DEFAULT_LANGUAGE):
        if language and language in choices:
            return language
    if not choices:
        raise ValueError("no language available")
    return choices[0]


class DeliveryFailed(Exception):
    """A channel did not take a message. ``permanent``: it refused it (an unknown mailbox, a
    number the provider will not serve), so trying again will not help; otherwise (no
    connection, a timeout, a busy or failing service) a later try may succeed."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


# --- formatting, per language -------------------------------------------------------------


def plural_form(count: int | Decimal, language: str) -> str:
    """The CLDR plural category of ``count`` in ``language`` (one, few, many, other)."""
    return str(Locale.parse(language).plural_form(count))


def _money_filter(minor: Any, currency: Any, language: str) -> str:
    if not currency:
        raise ValueError("money needs a currency: {{ amount|money('RUB') }}")
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise ValueError(f"money takes an integer of minor units, not {minor!r}")
    return money_text(minor, str(currency), language)


def _plural_filter(count: Any, language: str, forms: tuple[str, ...]) -> str:
    if not forms:
        raise ValueError("plural needs the word's forms: {{ n|plural('балл', 'балла', 'баллов') }}")
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"plural counts an integer, not {count!r}")
    return plural(count, language, *forms)


def plural(count: int, language: str, *forms: str) -> str:
    """``forms`` in the order one, few, many (Russian) or one, other (English): the one for
    ``count``."""
    category = plural_form(count, language)
    order = ("one", "few", "many", "other") if len(forms) >= 3 else ("one", "other")
    by_category = dict(zip(order, forms, strict=False))
    return by_category.get(category) or by_category.get("other") or forms[-1]


def points_text(count: int, language: str, words: Mapping[str, str] | None = None) -> str:
    """``count`` points in words: "1 балл", "2 балла", "5 баллов", "1 234 балла"."""
    names = words or POINT_WORDS.get(language) or POINT_WORDS["en"]
    word = names.get(plural_form(count, language)) or names.get("other") or ""
    return f"{format_decimal(count, locale=language)}\u00a0{word}"


def money_text(minor_units: int, currency: str, language: str) -> str:
    """An amount in minor units as the language writes money: "1 234,50 ₽", "$1,234.50"."""
    digits = get_currency_precision(currency)
    amount = Decimal(minor_units).scaleb(-digits)
    return str(format_currency(amount, currency, locale=language))


def date_text(value: date | datetime | str, language: str, style: str = "long") -> str:
    """A date ("5 декабря 2026 г.", "December 5, 2026") or, for a datetime, date and time.
    An ISO string (a date kept in JSON: a broadcast's variables) is read first."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date") from None
    if not isinstance(value, date):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, datetime):
        return str(format_datetime(value, format=style, locale=language))
    return str(format_date(value, format=style, locale=language))


def local(value: datetime, zone: tzinfo) -> datetime:
    """An instant as the member's clock shows it."""
    return value.astimezone(zone)


# --- the sandbox ----------------------------------------------------------------------------


def _filters(language: str) -> dict[str, Callable[..., Any]]:
    return {
        "points": lambda count, words=None: points_text(int(count), language, words),
        "money": lambda minor, currency=None: _money_filter(minor, currency, language),
        "date": lambda value, style="long": date_text(value, language, style),
        "number": lambda value: str(format_decimal(value, locale=language)),
        "plural": lambda count, *forms: _plural_filter(count, language, forms),
    }


# What one render may cost. Templates are written by marketers, run in the API (previews)
# and the worker (every message): a loop or an operator must not be able to take the
# process's time or memory.
MAX_LOOP_DEPTH = 2
MAX_RANGE = 1000
MAX_TEXT = 20_000  # characters of one rendered part
MAX_REPEAT = 1_000  # characters (or items) ``*`` may make: two nested loops over such stay cheap
MAX_VALUE = 2_000  # characters of a text variable a caller gives
MAX_EXPONENT = 64
# Filters that pad or repeat text by a number the template gives.
UNBOUNDED_FILTERS = (
    "center",
    "indent",
    "wordwrap",
    "format",
    "filesizeformat",
    "xmlattr",
    "batch",
    "slice",
    "tojson",
    "pprint",
    "urlize",
)


RENDER_SECONDS = 0.25  # one part's render; a message renders a handful
MAX_INT_BITS = 4096
# The methods of text a template may call: none that pads, repeats or formats by a number.
SAFE_TEXT_METHODS = frozenset(
    {
        "upper",
        "lower",
        "title",
        "capitalize",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "split",
        "isdigit",
        "isalpha",
        "isspace",
        "count",
        "find",
    }
)
_DEADLINE: ContextVar[float] = ContextVar("template_deadline", default=math.inf)


def _tick() -> None:
    if time.monotonic() > _DEADLINE.get():
        raise SecurityError(f"the template takes longer than {RENDER_SECONDS:g} s to render")


def _bounded(value: Any) -> Any:
    """What ``~`` and text blocks make, checked: a template may not build a huge text."""
    _tick()
    if len(value) > MAX_TEXT:
        raise SecurityError(f"a text longer than {MAX_TEXT:,} characters is not allowed")
    return value


class BoundedCodeGenerator(CodeGenerator):
    """Jinja2's code generator with every text concatenation (``~``, ``{% set %}`` blocks,
    macro bodies) passed through ``environment.bounded``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded(")
        super().visit_Concat(node, frame)
        self.write(")")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, bounded in time (every call, attribute, item and filter
    checks the render's deadline) and in the size of what arithmetic and text can make."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = BoundedCodeGenerator

    @staticmethod
    def bounded(value: Any) -> Any:
        return _bounded(value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        if isinstance(obj, str) and attribute not in SAFE_TEXT_METHODS and hasattr(str, attribute):
            # Before Jinja2's own handling, which offers str.format (padding by any width).
            raise SecurityError(f"text has no {attribute!r} here: use the filters")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in SAFE_TEXT_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "%" and isinstance(left, str):
            raise SecurityError("formatting text with % is not allowed: use the filters")
        if _too_large(operator, left, right):
            raise SecurityError("a number that large is not allowed")
        if operator == "*" and isinstance(left, str | list) != isinstance(right, str | list):
            text, times = (left, right) if isinstance(left, str | list) else (right, left)
            if isinstance(times, int) and len(text) * times > MAX_REPEAT:
                raise SecurityError(f"a value longer than {MAX_REPEAT:,} is not allowed")
        joined = isinstance(left, str | list) and isinstance(right, str | list)
        if operator == "+" and joined and len(left) + len(right) > MAX_TEXT:
            raise SecurityError(f"a value longer than {MAX_TEXT:,} is not allowed")
        return super().call_binop(context, operator, left, right)


def _too_large(operator: str, left: Any, right: Any) -> bool:
    """Whether ``left operator right`` on numbers makes one larger than ``MAX_INT_BITS``."""
    if not (isinstance(left, int | float) and isinstance(right, int | float)):
        return False
    if operator == "**":
        return abs(right) > MAX_EXPONENT or _bits(left) * abs(right) > MAX_INT_BITS
    return operator == "*" and _bits(left) + _bits(right) > MAX_INT_BITS


def _bits(number: Any) -> int:
    return abs(int(number)).bit_length() if isinstance(number, int) else 64


def _checked(found: object) -> Callable[..., Any]:
    """A filter or test that keeps the render's clock (its pass_context marks kept)."""
    function = cast(Callable[..., Any], found)

    @wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _tick()
        return function(*args, **kwargs)

    return checked


@cache
def environment(language: str, html: bool) -> LimitedSandbox:
    """The sandbox templates of ``language`` render in; ``html``: values are escaped."""
    env = LimitedSandbox(
        undefined=StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(_filters(language))
    for name in UNBOUNDED_FILTERS:
        env.filters.pop(name, None)
    # Filters are called directly by compiled templates: each is wrapped to keep the clock.
    env.filters = {name: _checked(f) for name, f in env.filters.items()}
    env.tests = {name: _checked(f) for name, f in env.tests.items()}
    env.globals["range"] = _range
    return env


def _range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"a range longer than {MAX_RANGE:,} is not allowed")
    return found


def _compile(source: str, part: str, language: str) -> Any:
    try:
        return _compiled(source, language, part in HTML_PARTS)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(part, exc.lineno, exc.message or "syntax error") from None
    except (ValueError, OverflowError, MemoryError, RecursionError, SyntaxError) as exc:
        # Compiling folds constants (``{{ (10**5000)|string }}``), and Python itself refuses
        # code nested too deep (120 ``if`` blocks).
        raise TemplateProblem(part, None, str(exc) or type(exc).__name__) from None


@lru_cache(maxsize=2048)
def _compiled(source: str, language: str, html: bool) -> Any:
    """A template compiled once per process: a broadcast renders the same few sources for
    every member (compiling costs more than rendering)."""
    return environment(language, html).from_string(source)


def names_used(source: str, part: str = "template") -> dict[str, int]:
    """Every variable ``source`` reads from what it is given, with the first line it is
    read on (names it sets itself, with ``set`` or ``for``, are not counted)."""
    try:
        tree = environment(DEFAULT_LANGUAGE, False).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(part, exc.lineno, exc.message or "syntax error") from None
    stored = {node.name for node in tree.find_all(nodes.Name) if node.ctx in ("store", "param")}
    stored |= {node.name for node in tree.find_all(nodes.Macro)}
    if any(True for _ in tree.find_all(nodes.For)):
        stored.add("loop")  # what a for loop gives its body
    stored.add("range")  # bounded: MAX_RANGE
    if any(True for _ in tree.find_all(nodes.CallBlock)):
        stored.add("caller")
    stored |= {"varargs", "kwargs"} if any(True for _ in tree.find_all(nodes.Macro)) else set()
    used: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in stored:
            used.setdefault(node.name, node.lineno)
    return used


def _loop_depth(node: nodes.Node, depth: int = 0) -> tuple[int, int | None]:
    """The deepest nesting of ``for`` loops under ``node`` and the line it reaches."""
    deepest, line = depth, None
    for child in node.iter_child_nodes():
        inner = depth + 1 if isinstance(child, nodes.For) else depth
        found, at = _loop_depth(child, inner)
        if found > deepest:
            deepest, line = found, at if at is not None else child.lineno
    return deepest, line


def check(source: str, part: str, allowed: Iterable[str]) -> None:
    """Refuse a template that does not compile, nests loops deeper than ``MAX_LOOP_DEPTH``
    or reads a variable its kind does not give, naming the line."""
    _compile(source, part, DEFAULT_LANGUAGE)
    tree = environment(DEFAULT_LANGUAGE, False).parse(source)
    depth, line = _loop_depth(tree)
    if depth > MAX_LOOP_DEPTH:
        raise TemplateProblem(part, line, f"loops nest at most {MAX_LOOP_DEPTH} deep")
    known = set(allowed)
    for name, line in sorted(names_used(source, part).items(), key=lambda item: item[1]):
        if name not in known:
            raise TemplateProblem(part, line, f"unknown template variable {name!r}")


def render(source: str, part: str, language: str, variables: Mapping[str, Any]) -> str:
    """``source`` rendered with ``variables`` in ``language``; a ``TemplateProblem`` (with
    its line where Jinja2 knows it) if it cannot be — whatever goes wrong in a marketer's
    template is that template's problem, never the caller's (a worker, a request)."""
    template = _compile(source, part, language)
    token = _DEADLINE.set(time.monotonic() + RENDER_SECONDS)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_TEXT:
                raise TemplateProblem(part, None, f"the text is longer than {MAX_TEXT:,}")
            out.append(chunk)
        return "".join(out).strip()
    except TemplateProblem:
        raise
    except UndefinedError as exc:
        raise TemplateProblem(part, _line_of(exc), exc.message or "undefined value") from None
    except SecurityError as exc:
        raise TemplateProblem(part, _line_of(exc), f"not allowed: {exc}") from None
    except RecursionError:
        raise TemplateProblem(part, None, "calls itself too deeply") from None
    except MemoryError:
        raise TemplateProblem(part, None, "makes a value too large") from None
    except Exception as exc:
        raise TemplateProblem(part, _line_of(exc), str(exc) or type(exc).__name__) from None
    finally:
        _DEADLINE.reset(token)


def _line_of(exc: BaseException) -> int | None:
    """The template line an error was raised on (Jinja2 rewrites the traceback so that the
    template's frames carry its line numbers)."""
    traceback = exc.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


# --- SMS length -----------------------------------------------------------------------------

# GSM 03.38: the basic character set (one septet each) and its extension table (two septets:
# the escape and the character).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SmsLength:
    """How an SMS text goes out: its encoding, its length in that encoding's units
    (septets or UTF-16 code units) and the number of segments a provider bills."""

    encoding: Encoding
    units: int
    segments: int


def sms_length(text: str) -> SmsLength:
    """GSM-7 when every character has a septet (160 in one message, 153 per part of a longer
    one), UCS-2 otherwise, as for any Cyrillic (70, and 67 per part)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, Encoding.GSM7
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, Encoding.UCS2
    segments = 1 if units <= single else math.ceil(units / part)
    return SmsLength(encoding, units, segments)

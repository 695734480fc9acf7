"""The registry of segment predicates: their models and their SQL compilers.

A predicate is data, a Pydantic model with a ``type`` field (like the rules' conditions),
registered with :func:`predicate`; its compiler, registered with :func:`compiles` from a
``repository.py`` module (SQL is built only there), turns it into a boolean SQLAlchemy
expression about one member. The registry lives here, under the segments package, so that
features below segments (support's survey scores) can add predicates as well as those
above it (analytics' churn risk): a module that registers predicates is listed in
``kopilka.segments.domain.PREDICATE_MODULES``. ``docs/segments.md`` shows an example.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class PredicateModel(BaseModel):
    """A predicate: ``type`` names it; the other fields are its parameters."""

    model_config = ConfigDict(extra="forbid")

    def check(self, today: date) -> None:
        """Further checks against the date (raise ``ValueError`` naming nothing: the caller
        names the predicate's place)."""


@dataclass(frozen=True)
class SqlContext:
    """What a compiler may use: the program, the moment of evaluation, the dialect, and
    the query's columns. ``member_id`` is the member id column of the query; ``members``
    and ``facts`` are the ``members`` and ``member_facts`` tables of the query (facts may be
    outer-joined: their columns are NULL for a member without purchases).

    ``windows``: the stored windows of ``member_facts`` are exact today for every member
    of the program, so a predicate over one of them may read its column. ``per_member``:
    the query walks few members (a page, a batch of events), so a correlated look-up per
    member beats an aggregate over the whole program."""

    program_id: UUID
    now: datetime
    today: date
    dialect: str  # postgresql | sqlite
    entry_tier: str | None
    points_currency: str
    member_id: Any
    members: Any
    facts: Any
    windows: bool = False
    per_member: bool = False


P = TypeVar("P", bound=PredicateModel)
Compiler = Callable[[Any, SqlContext], Any]
PREDICATES: dict[str, type[PredicateModel]] = {}
COMPILERS: dict[str, Compiler] = {}


def predicate(cls: type[P]) -> type[P]:
    """Register a predicate model under its ``type`` (its default value)."""
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a default for its type field")
    if name in PREDICATES and PREDICATES[name] is not cls:
        raise ValueError(f"predicate {name!r} is registered twice")
    PREDICATES[name] = cls
    return cls


def compiles(name: str) -> Callable[[Compiler], Compiler]:
    """Register the SQL compiler of the predicate ``name``."""

    def register(compiler: Compiler) -> Compiler:
        COMPILERS[name] = compiler
        return compiler

    return register

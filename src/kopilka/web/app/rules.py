"""The program's rules in plain words, for members and visitors: how points are earned and
spent, when they expire, and what each tier takes and gives — read from the version in
force, so the page never says other than what the till does."""

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kopilka.db import read_with_retry
from kopilka.programs.service import program_service
from kopilka.web.app.access import optional_member, program_of
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import render
from kopilka.web.words.program_words import describe_program
from kopilka.web.words.rule_words import ProgramView, RuleView, words_for

router = APIRouter(prefix="/app", include_in_schema=False)


def members_view(view: ProgramView) -> ProgramView:
    """What members are told: rules in force for everyone — not switched off, not a test
    run on a share of members."""

    def shown(rules: list[RuleView]) -> list[RuleView]:
        return [r for r in rules if r.enabled and not r.experiment]

    return replace(
        view, earning=shown(view.earning), rules=shown(view.rules), groups=[], experiments=[]
    )


@router.get("/{slug}/rules")
async def rules(request: Request, slug: str) -> Response:
    """The rules of the program in force, in the page's language."""
    program = await program_of(request, slug)
    await optional_member(request, slug)
    live = await read_with_retry(
        request.app.state.engine, lambda conn: program_service.in_force(conn, program.id)
    )
    language = language_of(request)
    words = words_for(language, Formats(language, program.settings.timezone), live.document)
    view = members_view(describe_program(words, live.document))
    return render(
        request,
        "app/rules/rules.html",
        {"slug": slug, "program_name": program.name, "view": view, "version": live.version},
        zone=program.settings.timezone,
    )

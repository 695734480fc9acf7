"""``kopilka giftcards`` as an operator runs it: a real process on a real SQLite file."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy import update

from kopilka.db import make_engine, reading, transaction
from kopilka.giftcards.repository import cards_t
from kopilka.giftcards.service import gift_card_service
from kopilka.programs.service import program_service
from tests.fixtures.cli import kopilka

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def _issue_cards(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        async with reading(engine) as conn:
            program = await program_service.get_by_slug(conn, "shop")
        async with transaction(engine) as conn:
            cards = [
                await gift_card_service.issue(conn, program, amount=amount, now=T0, valid_days=30)
                for amount in (1_500, 2_500)
            ]
            await gift_card_service.issue_card(
                conn, program, amount=700, now=T0, never_expires=True
            )
        return [str(card["id"]) for card in cards]
    finally:
        await engine.dispose()


async def _tamper(url: str, card_id: str) -> None:
    engine = make_engine(url)
    try:
        async with transaction(engine) as conn:
            await conn.execute(
                update(cards_t).where(cards_t.c.id == UUID(card_id)).values(balance=5)
            )
    finally:
        await engine.dispose()


def _run(work: object) -> object:
    # The test session's event loop may be running in this thread: use one of our own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()  # type: ignore[arg-type]


def test_expire_and_verify(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "shop.yaml").write_text("money_currency: USD\n")
    kopilka(
        tmp_path, "program", "create", "--slug", "shop", "--name", "Shop", "--settings", "shop.yaml"
    )
    card_ids = _run(_issue_cards(url))
    assert isinstance(card_ids, list)

    early = kopilka(tmp_path, "giftcards", "expire", "--as-of", "2026-04-08")
    assert "0 cards closed, 0 taken" in early.stdout
    expired = kopilka(tmp_path, "giftcards", "expire", "--as-of", "2026-04-09")
    assert "2 cards closed, 4000 taken" in expired.stdout
    again = kopilka(tmp_path, "giftcards", "expire", "--as-of", "2030-01-01")
    assert "0 cards closed" in again.stdout

    sound = kopilka(tmp_path, "giftcards", "verify")
    assert sound.stdout.count("ok") == 6

    _run(_tamper(url, card_ids[0]))
    broken = kopilka(tmp_path, "giftcards", "verify", check=False)
    assert broken.returncode == 1
    assert "FAIL balances equal transactions" in broken.stderr
    assert "FAIL expired cards are empty" in broken.stderr
    assert card_ids[0] in broken.stderr


async def _issue_current_card(url: str) -> None:
    engine = make_engine(url)
    try:
        async with reading(engine) as conn:
            program = await program_service.get_by_slug(conn, "shop")
        async with transaction(engine) as conn:
            await gift_card_service.issue(
                conn, program, amount=1_000, now=datetime.now(UTC), valid_days=30
            )
    finally:
        await engine.dispose()


def test_expiry_never_takes_money_ahead_of_time(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "shop.yaml").write_text("money_currency: USD\n")
    kopilka(
        tmp_path, "program", "create", "--slug", "shop", "--name", "Shop", "--settings", "shop.yaml"
    )
    _run(_issue_current_card(url))
    future = kopilka(tmp_path, "giftcards", "expire", "--as-of", "2999-01-01")
    assert "0 cards closed, 0 taken" in future.stdout

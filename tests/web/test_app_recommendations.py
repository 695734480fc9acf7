"""The app's "Recommended for you" page: the signed-in member's items with their reasons,
in Russian, and a plain sentence when there are none."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.recommendations.test_service import NOW, member, shop
from tests.web.conftest import Browser, app_as


async def test_the_members_recommendations_with_reasons(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    anna = await shop(api)
    with clock.frozen(NOW):
        assert (await api.post("/v1/recommendations/build")).status_code == 200
        await app_as(browser, engine, program, UUID(anna["id"]))
        page = await browser.client.get(
            f"/app/{program.slug}/recommended", headers={"accept-language": "ru"}
        )
        english = await browser.get(f"/app/{program.slug}/recommended")
    assert page.status_code == 200, page.text
    assert "Often bought with what you bought recently." in english.text
    html = page.text
    assert "Рекомендуем вам" in html
    order = [html.index(f'data-sku="{sku}"') for sku in ("MILK", "ESPRESSO", "CAKE", "BEANS")]
    assert order == sorted(order)
    assert "примерно раз в 7 дн., последний раз — 8 дн. назад" in html
    assert "Часто покупают вместе с тем, что вы недавно купили." in html
    assert "Популярно в любимой вами категории" in html
    assert 'data-sku="LATTE"' not in html


async def test_nothing_yet(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    newcomer = await member(api)
    await app_as(browser, engine, program, UUID(newcomer["id"]))
    page = await browser.client.get(
        f"/app/{program.slug}/recommended", headers={"accept-language": "ru"}
    )
    assert page.status_code == 200, page.text
    assert "Пока нечего рекомендовать." in page.text
    assert 'href="/app/' + program.slug + '/recommended"' in page.text

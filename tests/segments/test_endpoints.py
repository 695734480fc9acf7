"""The segment and facts routes over HTTP: shapes, errors naming the field, permissions,
other programs' data unseen — on SQLite and PostgreSQL."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.crm.support import buy, new_member

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SPENDERS = {"type": "purchases", "measure": "spend", "min": 10_000}


async def test_the_segment_routes(api: Api, engine: AsyncEngine, program: ProgramContext) -> None:
    with clock.frozen(T0):
        anna = await new_member(api, name="Anna")
        await new_member(api)
        await buy(api, anna, 20_000, T0 - timedelta(days=1))
        bad = await api.post(
            "/v1/segments/preview",
            {"definition": {"all": [SPENDERS, {"type": "purchases", "last_days": "30", "min": 1}]}},
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "definition.all.1.last_days"
        created = await api.post(
            "/v1/segments", {"key": "spenders", "name": "Spenders", "definition": SPENDERS}
        )
        assert created.status_code == 201, created.text
        assert created.json()["members"] == 0  # the facts consumer has not run: nothing yet
        assert (await api.post("/v1/segments/spenders/refresh")).status_code == 200
        assert (await api.get("/v1/segments/spenders/count")).json()["count"] == 0
        again = await api.post(
            "/v1/segments", {"key": "spenders", "name": "x", "definition": SPENDERS}
        )
        assert again.status_code == 409
        preview = await api.post(
            "/v1/segments/preview", {"definition": {"type": "purchases", "min": 0}}
        )
        assert preview.json()["count"] == 2
        static = await api.post("/v1/segments", {"key": "list", "name": "List", "kind": "static"})
        assert static.status_code == 201
        uploaded = await api.put(
            "/v1/segments/list/list",
            {"members": [anna["external_id"], "nobody-at-all", anna["id"]]},
        )
        assert uploaded.json()["not_found"] == [{"line": 2, "value": "nobody-at-all"}]
        page = (await api.get("/v1/segments/list/members")).json()
        assert page["items"] == [{"member_id": anna["id"], "name": "Anna"}]
        export = await api.get("/v1/segments/list/export.csv")
        assert export.status_code == 200 and f"{anna['id']},Anna" in export.text
        mine = (await api.get(f"/v1/members/{anna['id']}/segments")).json()
        assert [s["key"] for s in mine["items"]] == ["list"]
        facts = await api.get(f"/v1/members/{anna['id']}/facts")
        assert facts.status_code == 200 and facts.json()["member_id"] == anna["id"]
        assert (
            await api.patch("/v1/segments/spenders", {"definition": SPENDERS | {"min": 1}})
        ).json()["version"] == 2
        assert (await api.delete("/v1/segments/list")).json()["status"] == "archived"
        assert (await api.get("/v1/segments/list")).status_code == 404
        listed = (await api.get("/v1/segments")).json()["items"]
        assert [s["key"] for s in listed] == ["spenders"]


async def test_permissions_and_other_programs(
    http: httpx.AsyncClient, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await new_member(api)
    assert (
        await api.post("/v1/segments", {"key": "s", "name": "S", "kind": "static"})
    ).status_code == 201
    pos = Api(http, await make_key(engine, program, "pos"))
    assert (await pos.get("/v1/segments")).status_code == 403
    assert (await pos.get("/v1/segments/s/export.csv")).status_code == 403
    analyst = Api(http, await make_key(engine, program, "analyst"))
    assert (await analyst.get("/v1/segments/s/count")).status_code == 200
    assert (await analyst.post("/v1/segments/s/refresh")).status_code == 403
    assert (await analyst.get("/v1/segments/s/export.csv")).status_code == 403
    other = await make_program(engine)
    stranger = Api(http, await make_key(engine, other, "admin"))
    assert (await stranger.get("/v1/segments/s")).status_code == 404
    assert (await stranger.get(f"/v1/members/{anna['id']}/facts")).status_code == 404
    assert (await stranger.get(f"/v1/members/{anna['id']}/segments")).status_code == 404


def test_every_entry_point_provides_the_segment_loader() -> None:
    for module in ("kopilka.app", "kopilka.worker.setup", "kopilka.cli.app"):
        check = (
            f"import {module}\n"
            "from kopilka.worker.modules import import_consumers\n"
            "from kopilka.earning import segment_keys\n"
            "assert segment_keys.provided()\n"
        )
        if module == "kopilka.worker.setup":
            check = check.replace("assert", "import_consumers()\nassert")
        done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
        assert done.returncode == 0, (module, done.stderr)

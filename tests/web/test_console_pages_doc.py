"""docs/console.md lists every page of the console with the permission it needs."""

from pathlib import Path

from tests.web.test_console_permissions import console_routes

DOC = Path(__file__).parents[2] / "docs" / "console.md"


def test_every_console_page_is_in_the_docs_with_its_permission() -> None:
    text = DOC.read_text()
    rows = {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")
    }
    for method, path, permission in console_routes():
        if path == "/console":
            continue
        row = rows.get(f"`{path}`")
        assert row is not None, f"{path} is not in docs/console.md"
        assert method in row, (path, method)
        if permission is not None:
            assert f"{method} `{permission}`" in row, (path, method, permission)


def test_every_page_of_the_app_is_in_the_docs() -> None:
    from tests.web.test_app_routes import app_routes

    text = (DOC.parent / "app.md").read_text()
    for method, path in app_routes():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{path}` |")), None)
        assert row is not None and method in row, f"{method} {path} is not in docs/app.md"

"""What ``kopilka serve`` and the demo print, for each kind of host (no server started)."""

from kopilka.cli.demo import serving_hints
from kopilka.cli.serve import where_to_find


def test_a_loopback_host_is_printed_as_the_url_to_open() -> None:
    assert where_to_find("127.0.0.1", 8000) == [
        "Kopilka API listening on http://127.0.0.1:8000; press Ctrl+C to stop",
        "  interactive docs: http://127.0.0.1:8000/docs",
        "  OpenAPI:          http://127.0.0.1:8000/openapi.json",
    ]


def test_every_interface_is_said_and_the_links_go_to_loopback() -> None:
    assert where_to_find("0.0.0.0", 9000)[:2] == [
        "Kopilka API listening on 0.0.0.0:9000 (all interfaces); press Ctrl+C to stop",
        "  interactive docs: http://127.0.0.1:9000/docs",
    ]
    assert where_to_find("::", 9000)[:2] == [
        "Kopilka API listening on [::]:9000 (all interfaces); press Ctrl+C to stop",
        "  interactive docs: http://[::1]:9000/docs",
    ]
    assert where_to_find("::1", 9000)[2] == "  OpenAPI:          http://[::1]:9000/openapi.json"


def test_the_demos_curl_hint_is_one_command_on_a_line_of_its_own() -> None:
    hints = serving_hints("0.0.0.0", 8000, "kp_secret")
    assert (
        hints[-1] == '  curl -H "Authorization: Bearer kp_secret" http://127.0.0.1:8000/v1/health'
    )


def test_the_demo_says_where_the_console_and_the_app_are_and_whom_to_sign_in_as() -> None:
    from kopilka.cli.demo import web_hints
    from kopilka.config import Settings

    settings = Settings(database_url="sqlite+aiosqlite:///x.db", mail_outbox_dir="/tmp/mail")
    hints = web_hints("127.0.0.1", 8000, "anna@example.com", settings)
    assert hints[0] == "staff console: http://127.0.0.1:8000/console/"
    assert "owner@demo-cafe.example, password kopilka-demo-2026" in hints[1]
    assert hints[2] == "members' app:  http://127.0.0.1:8000/app/demo/"
    assert (
        hints[3]
        == "  sign in as anna@example.com: the one-time code arrives as an .eml file in /tmp/mail"
    )


def test_forwarded_addresses_are_believed_only_from_the_configured_proxies() -> None:
    from kopilka.cli.serve import proxy_options
    from kopilka.config import Settings

    assert proxy_options(Settings(database_url="sqlite+aiosqlite:///x.db")) == {
        "proxy_headers": False
    }
    behind = Settings(database_url="sqlite+aiosqlite:///x.db", trusted_proxies="10.0.0.5")
    assert proxy_options(behind) == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}

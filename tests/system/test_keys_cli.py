"""``kopilka keys list`` and ``kopilka keys revoke`` as a user runs them."""

from pathlib import Path

from tests.cli.test_cli import kopilka, workdir

__all__ = ["workdir"]


def test_keys_are_listed_without_secrets_and_revoked(workdir: Path) -> None:
    till = kopilka(workdir, "keys", "create", "--scope", "pos", "--name", "till 3").stdout.strip()
    kopilka(workdir, "keys", "create", "--scope", "admin", "--name", "back office")
    listed = kopilka(workdir, "keys", "list").stdout
    assert "till 3" in listed and "back office" in listed and till[:10] in listed
    assert till not in listed
    revoked = kopilka(workdir, "keys", "revoke", till[:10]).stdout
    assert "revoked" in revoked and "till 3" in revoked
    assert "till 3" not in kopilka(workdir, "keys", "list").stdout
    assert "till 3" in kopilka(workdir, "keys", "list", "--revoked").stdout
    unknown = kopilka(workdir, "keys", "revoke", "kp_nothing", check=False)
    assert unknown.returncode == 1 and "no API key" in unknown.stderr

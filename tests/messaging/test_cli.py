"""``kopilka messages`` and ``kopilka jobs points-expiring`` as a user runs them."""

from pathlib import Path

from tests.cli.test_cli import kopilka, workdir

__all__ = ["workdir"]


def test_a_test_message_its_status_a_retry_and_the_counts(workdir: Path) -> None:
    assert kopilka(workdir, "messages", "list").stdout.strip() == "no messages"
    made = kopilka(workdir, "messages", "test", "points_spent", "--to", "anna@shop.example")
    message_id, *_ = made.stdout.split()
    assert "points_spent email anna@shop.example queued" in made.stdout

    status = kopilka(workdir, "messages", "status", message_id).stdout
    assert "subject: Списано 300\xa0баллов" in status  # the kind's sample data
    assert " queued: test" in status
    refused = kopilka(workdir, "messages", "retry", message_id, check=False)
    assert refused.returncode == 1
    assert "only a failed one is sent again" in refused.stderr
    assert kopilka(workdir, "messages", "counts").stdout.strip() == "queued: 1"
    listed = kopilka(workdir, "messages", "list", "--status", "queued").stdout
    assert message_id in listed


def test_bad_input_is_one_line(workdir: Path) -> None:
    for args, said in [
        (("messages", "test", "nope", "--to", "a@b.example"), "no message kind 'nope'"),
        (("messages", "test", "points_spent", "--to", "not-an-address"), "is not an e-mail"),
        (("messages", "test", "points_spent"), "give either --to or --member"),
        (("messages", "list", "--status", "lost"), "--status: 'lost' is not one of"),
        (("messages", "status", "not-a-uuid"), "'not-a-uuid' is not a message id"),
        (("messages", "status", "00000000-0000-0000-0000-000000000001"), "no message"),
    ]:
        result = kopilka(workdir, *args, check=False)
        assert result.returncode != 0, args
        assert said in result.stderr + result.stdout, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_the_expiry_reminder_job(workdir: Path) -> None:
    result = kopilka(workdir, "jobs", "points-expiring", "--date", "2031-03-03")
    assert result.stdout.strip() == "points-expiring: 0 members, 0 messages"

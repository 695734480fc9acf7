"""``kopilka messaging``: set-up of the channels messages go out by."""

import typer

from kopilka.cli.common import console

app = typer.Typer(help="Messages to members: channel set-up.", no_args_is_help=True)


@app.command("vapid-keys")
def vapid_keys() -> None:
    """Make a VAPID key pair for web push, printed as environment variables: keep the private
    key secret; browsers get the public one."""
    # Here, not at the top: the push client's libraries load only for this command.
    from kopilka.messaging.push import new_vapid_keys

    keys = new_vapid_keys()
    console.print(f"KOPILKA_VAPID_PRIVATE_KEY={keys.private_key}", highlight=False, soft_wrap=True)
    console.print(f"KOPILKA_VAPID_PUBLIC_KEY={keys.public_key}", highlight=False, soft_wrap=True)

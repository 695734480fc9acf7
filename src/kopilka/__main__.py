"""Entry point of the ``kopilka`` console script."""

from kopilka.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()

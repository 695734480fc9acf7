"""Entry point of the ``kopilka`` console script."""

import os

# Each process (server, worker, command) runs one event loop on one core: the lifetime
# models' many tiny matrix operations only lose time waking BLAS worker threads (measured
# in docs/performance.md). Set before numpy is first imported; an explicit setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from kopilka.cli.app import app  # noqa: E402


def main() -> None:
    app()


if __name__ == "__main__":
    main()

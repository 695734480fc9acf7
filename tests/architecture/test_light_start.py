"""The API and worker processes start without the analytics' numerical libraries: numpy
and scipy take some 90 MB, and only a refit of the lifetime models, a validation, an
experiment's statistics or a build of the recommendations need them (they import them when
they run); nor without cryptography (some 9 MB more), which only signing a wallet pass or
checking its certificates needs. The idle memory target of the API process
(docs/performance.md) depends on it."""

import subprocess
import sys

PROBE = """
import sys
import kopilka.__main__, kopilka.app, kopilka.worker.runner, kopilka.worker.modules
from kopilka.worker.modules import import_consumers
import_consumers()
heavy = sorted(m for m in ("numpy", "scipy", "pandas", "cryptography") if m in sys.modules)
print(",".join(heavy))
"""


def test_serving_and_delivering_import_no_numerical_library() -> None:
    found = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert found.stdout.strip() == "", f"loaded at start: {found.stdout.strip()}"

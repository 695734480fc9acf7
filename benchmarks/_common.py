"""Helpers shared by the benchmark scripts: scratch databases, the ``kopilka`` command,
the API server process, /proc readings and the report format.

Everything here talks to 127.0.0.1 only. Nothing here is imported by the package.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
KOPILKA = str(VENV_BIN / "kopilka") if (VENV_BIN / "kopilka").exists() else "kopilka"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- output ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "src_sha256": source_digest(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def source_digest() -> str:
    """A short digest of src/ (the code measured), to tell runs of different code apart."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def print_table(title: str, rows: Sequence[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print("-" * (width + 24))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 24))


def print_json(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=False, default=str), flush=True)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 if there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-p * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL scratch databases --------------------------------------------------------


def psql(sql: str, database: str = "postgres", timeout: float = 120) -> str:
    out = subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            PG_USER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout.strip()


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@contextmanager
def scratch_pg_database(purpose: str) -> Iterator[str]:
    """A new, empty database kopilka_bench_<purpose>_<random>, dropped on exit."""
    name = f"kopilka_bench_{purpose}_{secrets.token_hex(4)}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        try:
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except subprocess.SubprocessError as exc:
            log(f"could not drop database {name}: {exc}")


# --- the kopilka command -----------------------------------------------------------------


def kopilka_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KOPILKA_DATABASE_URL"] = database_url
    env.setdefault("COLUMNS", "100")
    # Local traffic only: make sure no proxy setting is ever picked up by a child.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(var, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def kopilka(database_url: str, *args: str, timeout: float = 600) -> str:
    """Run ``kopilka ARGS`` against this database; returns stdout, raises on failure."""
    proc = subprocess.run(
        [KOPILKA, *args],
        env=kopilka_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"kopilka {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def prepare_database(database_url: str, slug: str, settings_file: Path | None = None) -> None:
    kopilka(database_url, "db", "upgrade")
    args = ["program", "create", "--slug", slug, "--name", f"Benchmark {slug}"]
    if settings_file is not None:
        args += ["--settings", str(settings_file)]
    kopilka(database_url, *args)


def create_admin_key(database_url: str, slug: str) -> str:
    out = kopilka(database_url, "keys", "create", "--scope", "admin", "--program", slug)
    return out.strip().splitlines()[-1].strip()


def ledger_verify(database_url: str, slug: str) -> tuple[bool, str]:
    proc = subprocess.run(
        [KOPILKA, "ledger", "verify", "--program", slug],
        env=kopilka_env(database_url),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


# --- /proc -------------------------------------------------------------------------------


def _own_cpu_times(pid: int) -> tuple[float, float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and its live children, e.g. server workers
    ((0, 0) if it is gone)."""
    user, system = _own_cpu_times(pid)
    for child in _children(pid):
        child_user, child_system = _own_cpu_times(child)
        user, system = user + child_user, system + child_system
    return user, system


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    return sum(cpu_times(pid))


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def postgres_cpu_by_pid() -> dict[int, float]:
    """CPU seconds of every process named postgres (the server and its backends)."""
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if stat[stat.find("(") + 1 : stat.rfind(")")].startswith("postgres"):
            fields = stat.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return found


def postgres_cpu_since(before: dict[int, float]) -> float:
    """CPU seconds used by postgres processes since ``before`` (processes that ended in
    between are not counted)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu_by_pid().items())


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


class CpuMeter:
    """CPU used by some processes and by the whole machine between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.result: dict[str, float] = {}

    def start(self) -> None:
        self._wall = time.monotonic()
        self._procs = {name: cpu_times(pid) for name, pid in self.pids.items()}
        self._pg = postgres_cpu_by_pid()
        self._machine = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        result: dict[str, float] = {}
        for name, pid in self.pids.items():
            user, system = cpu_times(pid)
            user -= self._procs[name][0]
            system -= self._procs[name][1]
            result[f"{name}_cpu_pct"] = 100 * (user + system) / wall
            result[f"{name}_sys_cpu_pct"] = 100 * system / wall
        result["wall_seconds"] = wall
        result["postgres_cpu_pct"] = 100 * postgres_cpu_since(self._pg) / wall
        busy, total = machine_busy_seconds()
        result["machine_busy_pct"] = (
            100 * (busy - self._machine[0]) / max(total - self._machine[1], 1e-9)
        )
        self.result = {k: round(v, 1) for k, v in result.items()}
        return self.result


# --- the API server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    port: int, path: str, key: str | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_post(
    port: int, path: str, body: dict[str, Any], key: str, timeout: float = 10.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """``kopilka serve`` in a child process; stopped (SIGINT, then SIGKILL) on exit."""

    def __init__(
        self,
        database_url: str,
        port: int | None = None,
        wrapper: Sequence[str] = (),
        workers: int = 1,
    ):
        self.database_url = database_url
        self.workers = workers
        self.port = port or free_port()
        self.wrapper = list(wrapper)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(f"/tmp/kopilka-bench-serve-{os.getpid()}-{self.port}.log")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                *self.wrapper,
                KOPILKA,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=kopilka_env(self.database_url),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                status, _ = http_get(self.port, "/v1/health", timeout=2.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not answer /v1/health in time")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


def install_sigterm_handler() -> None:
    """Turn SIGTERM into SystemExit so that cleanup (finally blocks) runs."""

    def _handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _handler)

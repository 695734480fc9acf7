"""Fit time of the customer-lifetime models on CDNOW, side by side with ``lifetimes``.

  .venv/bin/python benchmarks/clv_fit.py [--repeats 3] [--lifetimes-python PATH]

For CDNOW_sample (2,357 customers) and CDNOW_master (23,570), calibration to 1997-09-30 in
weeks: the time to read and summarise the log, then each model's fit (best of ``--repeats``)
with its parameters and log-likelihood.

The same summaries are then fitted by the ``lifetimes`` package (BetaGeoFitter,
ParetoNBDFitter, GammaGammaFitter), which is not a dependency of Kopilka: it is used from
this interpreter if it imports here, else from ``--lifetimes-python`` (default
/tmp/ltvenv/bin/python, a throw-away venv: ``python3 -m venv /tmp/ltvenv &&
/tmp/ltvenv/bin/pip install lifetimes``), in a subprocess fed the summaries as a .npz
file. Both parameter sets and the ratio of the times are printed in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from kopilka.analytics.lifetime import bgnbd, gamma_gamma, pareto  # noqa: E402
from kopilka.analytics.lifetime.cdnow import read_cdnow  # noqa: E402
from kopilka.analytics.lifetime.models import MODELS, Summary, fit, summarise  # noqa: E402

CDNOW = REPO.parent / "shared" / "data" / "cdnow"
CALIBRATION_END = date(1997, 9, 30)

# Run by the lifetimes interpreter: fit the three models on the summaries of the .npz file
# and print {data set: {model: {params, log_likelihood, seconds}}} as JSON.
LIFETIMES_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np
import pandas as pd
warnings.simplefilter("ignore")
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
data = np.load(sys.argv[1])
repeats = int(sys.argv[2])
out = {}
for name in json.loads(sys.argv[3]):
    x, t_x, T, m = (pd.Series(data[f"{name}_{c}"]) for c in ("x", "t_x", "T", "m"))
    results = {}
    for model, make, args in (
        ("bgnbd", BetaGeoFitter, (x, t_x, T)),
        ("pareto", ParetoNBDFitter, (x, t_x, T)),
        ("gammagamma", GammaGammaFitter, (x[(x > 0) & (m > 0)], m[(x > 0) & (m > 0)])),
    ):
        best = float("inf")
        for _ in range(repeats):
            fitter = make()
            began = time.perf_counter()
            fitter.fit(*args)
            best = min(best, time.perf_counter() - began)
        results[model] = {
            "params": {k: float(v) for k, v in fitter.params_.items()},
            "seconds": best,
        }
    out[name] = results
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lifetimes-python", default="/tmp/ltvenv/bin/python")
    args = parser.parse_args()

    summaries: dict[str, Summary] = {}
    ours: dict[str, dict[str, dict[str, Any]]] = {}
    for name in ("CDNOW_sample", "CDNOW_master"):
        began = time.perf_counter()
        with (CDNOW / f"{name}.txt").open() as lines:
            log = read_cdnow(lines)
        read = time.perf_counter() - began
        summary = summarise(log, CALIBRATION_END)
        prepared = time.perf_counter() - began
        summaries[name] = summary
        rows = len(summary.compressed().weights)
        print(
            f"{name}: {len(log):,} lines, {len(summary):,} customers, {rows:,} distinct "
            f"(x, t_x, T) rows; read {read:.3f} s, read + summary {prepared:.3f} s"
        )
        ours[name] = {}
        for model in MODELS:
            times = []
            for _ in range(args.repeats):
                fitted = fit(model, summary)
                times.append(fitted.seconds)
            ours[name][model] = {
                "params": fitted.params,
                "log_likelihood": fitted.log_likelihood,
                "seconds": min(times),
                "converged": fitted.converged,
            }

    theirs = _lifetimes(summaries, args.repeats, args.lifetimes_python)
    for name in summaries:
        print(f"\n{name}")
        header = f"{'model':<11} {'ours s':>9} {'lifetimes s':>12} {'ratio':>7}"
        print(f"{header}  parameters (ours | lifetimes)")
        for model in MODELS:
            mine = ours[name][model]
            other = (theirs or {}).get(name, {}).get(model)
            ratio = f"{other['seconds'] / mine['seconds']:.1f}x" if other else "-"
            their_time = f"{other['seconds']:.3f}" if other else "-"
            print(
                f"{model:<11} {mine['seconds']:>9.3f} {their_time:>12} {ratio:>7}  "
                f"{_params(mine['params'])} | {_params(other['params']) if other else '-'}"
            )
            their_ll = (
                _their_log_likelihood(model, other["params"], summaries[name]) if other else None
            )
            print(
                f"{'':<11} log-likelihood ours {mine['log_likelihood']:.2f}"
                + (f", lifetimes' parameters {their_ll:.2f}" if their_ll is not None else "")
                + f"; converged: {mine['converged']}"
            )
    print(json.dumps({"ours": ours, "lifetimes": theirs}, default=str))


def _their_log_likelihood(model: str, params: dict[str, float], summary: Summary) -> float:
    """Our log-likelihood at lifetimes' parameters (its names: v for γ)."""
    x, t_x, T, m = summary.frequency, summary.recency, summary.age, summary.monetary
    if model == "bgnbd":
        vector = np.array([params[k] for k in ("r", "alpha", "a", "b")])
        return float(np.sum(bgnbd.log_likelihood(vector, x, t_x, T)))
    if model == "pareto":
        vector = np.array([params[k] for k in ("r", "alpha", "s", "beta")])
        return float(np.sum(pareto.log_likelihood(vector, x, t_x, T)))
    vector = np.array([params["p"], params["q"], params["v"]])
    used = (x > 0) & (m > 0)
    return float(np.sum(gamma_gamma.log_likelihood(vector, x[used], m[used])))


def _params(params: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items())


def _lifetimes(summaries: dict[str, Summary], repeats: int, python: str) -> dict[str, Any] | None:
    arrays: dict[str, np.ndarray] = {}
    for name, summary in summaries.items():
        arrays[f"{name}_x"] = summary.frequency
        arrays[f"{name}_t_x"] = summary.recency
        arrays[f"{name}_T"] = summary.age
        arrays[f"{name}_m"] = summary.monetary
    try:
        import lifetimes  # noqa: F401

        interpreter = sys.executable
    except ImportError:
        interpreter = python
        if not Path(interpreter).exists():
            print(f"\nlifetimes: not importable here and {interpreter} does not exist: skipped")
            return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "summaries.npz"
        np.savez(path, **arrays)  # type: ignore[arg-type]
        done = subprocess.run(
            [
                interpreter,
                "-c",
                LIFETIMES_SCRIPT,
                str(path),
                str(repeats),
                json.dumps(list(summaries)),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if done.returncode != 0:
        print(f"\nlifetimes failed ({interpreter}):\n{done.stderr[-2000:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()

"""Benchmark the data-quality suites on DuckDB against a plain DuckDB aggregate of the same file.

    python benchmarks/validate_bench.py --rows 10000000 [--repeat 3] [--workdir DIR]
        [--memory-limit 2GB]

Generates one month of N synthetic requests (Parquet, `write_workspace` from benchmarks/run.py:
0.1 % logging duplicates, 2 % untagged, 1 % HTTP 429), then times, each in its own process so
peak RSS is its own:

- validate: `validation_results` for the requests suite (GX's SQL engine on the kit's DuckDB
  connection) plus the registry and pricing suites; the one-time `import great_expectations`
  and the loader's `load_requests` are timed separately and not counted;
- duckdb:   run.py's plain DuckDB scan + price join + group-by of the same file (the floor).

Prints medians of --repeat runs and the ratio. A requests.parquet already in --workdir is reused
(whatever its size). Not a test: figures go in the closing note.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import child_run, run_duckdb, write_workspace


def run_validate(config: Path, memory_limit: str | None) -> dict[str, float]:
    started = time.perf_counter()
    from allocation_kit.validate import _gx

    _gx()  # the one-time GX import, not counted
    imported = time.perf_counter()

    from allocation_kit.config import load_workspace, read_yaml
    from allocation_kit.load import connect, load_requests
    from allocation_kit.periods import parse_period
    from allocation_kit.validate import (
        default_suites_dir,
        pricing_frame,
        registry_frame,
        suite_parameters,
        validation_results,
    )

    workspace = load_workspace(config)
    con = connect(memory_limit)
    load_requests(con, workspace.kit.requests, workspace.root, config.name)
    loaded = time.perf_counter()
    registry = read_yaml(workspace.registry_path)
    parameters = suite_parameters(parse_period("2026-10"), registry, workspace.kit.currency, 0.95)
    suites = validation_results(
        con,
        default_suites_dir(),
        parameters,
        relations={"requests": "requests"},
        frames={
            "registry": registry_frame(registry),
            "pricing": pricing_frame(read_yaml(workspace.pricing_path)),
        },
    )
    done = time.perf_counter()
    failed = [r.name for s in suites for r in s.results if r.success is False]
    print(f"  failed expectations: {', '.join(failed) or 'none'}", file=sys.stderr)
    return {"seconds": done - loaded, "load": loaded - imported, "import": imported - started}


def run_plain(config: Path, memory_limit: str | None) -> dict[str, float]:
    started = time.perf_counter()
    run_duckdb(config)
    return {"seconds": time.perf_counter() - started}


CONTENDERS = {"validate": run_validate, "duckdb": run_plain}


def measure(name: str, config: Path, memory_limit: str | None) -> tuple[dict[str, float], float]:
    """(timings inside the child, peak RSS in MB) of one run in a fresh process."""
    limit = ["--memory-limit", memory_limit] if memory_limit else []
    return child_run(__file__, name, ["--config", str(config), *limit])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", choices=list(CONTENDERS))
    parser.add_argument("--config", type=Path)
    parser.add_argument(
        "--memory-limit", default=None, help="DuckDB memory_limit of the validating connection"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CONTENDERS[args.child](args.config, args.memory_limit)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="allocation-kit-validate-bench-"))
    config = workdir / "kit.yaml"
    started = time.perf_counter()
    if not (workdir / "requests.parquet").exists():
        config = write_workspace(workdir, args.rows)
    size = (workdir / "requests.parquet").stat().st_size / 1e6
    print(f"ledger: {args.rows:,} rows ({size:.0f} MB Parquet) at {workdir}, "
          f"ready in {time.perf_counter() - started:.1f} s")  # fmt: skip
    medians = {}
    for name in CONTENDERS:
        runs = [measure(name, config, args.memory_limit) for _ in range(args.repeat)]
        seconds = statistics.median(r[0]["seconds"] for r in runs)
        peak = max(r[1] for r in runs)
        medians[name] = seconds
        extra = ""
        if name == "validate":
            load = statistics.median(r[0]["load"] for r in runs)
            gx_import = statistics.median(r[0]["import"] for r in runs)
            extra = f"  (not counted: GX import {gx_import:.2f} s, load_requests {load:.2f} s)"
        each = ", ".join(f"{r[0]['seconds']:.2f}" for r in runs)
        print(f"{name:<9} median {seconds:7.2f} s  peak RSS {peak:7.0f} MB  runs {each}{extra}")
    print(f"validate / plain duckdb = {medians['validate'] / medians['duckdb']:.2f}x")


if __name__ == "__main__":
    main()

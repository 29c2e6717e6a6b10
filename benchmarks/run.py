"""Benchmark the ledger pipeline against a plain DuckDB aggregate and a naive pandas version.

    python benchmarks/run.py --rows 10000000 [--repeat 3] [--workdir DIR]

Generates one month of N synthetic requests (Parquet) with a registry of 8 teams / 24
applications (one shared) and a 6-model price snapshot, then times, each in its own process so
peak RSS is its own:

- pipeline: allocation-kit's load → attribute → price → allocate plus the evidence files
  (allocation.csv, exceptions.csv, manifest.json with the SHA-256 of every input);
- duckdb:   a plain DuckDB scan + price join + group-by of the same file (the floor);
- read-all: DuckDB reading every column of the file once and nothing else (hash of each row):
            the floor of any tool that must list some rows in full, as the exception file does;
- dedupe-floor: DuckDB counting the request_ids logged more than once and nothing else: the
            least work the required de-duplication takes, a floor under the pipeline's time;
- duckdb-dedupe: plain DuckDB SQL doing what the pandas contender does (SELECT DISTINCT *,
            registry and price joins, group-by): the same allocation written directly in SQL;
- pandas:   a naive pandas implementation of the same allocation (read, dedupe, merge, group).

Prints medians of --repeat runs and the ratios, with each contender's CPU seconds, kernel
seconds and minor page faults. Not a test: figures go in the closing note.

On a virtual machine whose balloon driver hands free memory back to the host, the first touch of
that memory is slow (measured on the project's 2-core VM: 80 MB in 0.43 s when it had been
returned, 0.012 s when not), so a contender's time also depends on how much memory it touches
and on what ran just before it; compare contenders within one run, or interleave runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEAMS = ["search", "support", "sales", "growth", "data", "legal", "finance", "platform"]
MODELS = {  # model: (input, cached_input, output) per 1M tokens
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "claude-sonnet-4-5": ("3.00", "0.30", "15.00"),
    "o3-mini": ("1.10", "0.55", "4.40"),
    "text-embedding-3-small": ("0.02", "0.02", "0"),
    "gemini-2.5-flash": ("0.30", "0.075", "2.50"),
}


def write_workspace(root: Path, rows: int) -> Path:
    import duckdb

    root.mkdir(parents=True, exist_ok=True)
    apps = [(f"{team}-app{i}", team) for team in TEAMS for i in range(3)]
    registry = ["teams:"]
    registry += [
        f"  - {{id: {t}, business_unit: bu{i % 3}, cost_center: CC-{i}00, budget_owner: {t}-lead}}"
        for i, t in enumerate(TEAMS)
    ]
    registry += ["applications:"] + [f"  - {{id: {a}, team: {t}}}" for a, t in apps[:-1]]
    registry += [
        f"  - id: {apps[-1][0]}",
        "    team: platform",
        "    shared: {method: proportional, basis: tokens, teams: [search, support, sales]}",
        "environments: [production, staging, development]",
        "workload_classes: [user_facing_chat, batch]",
    ]
    (root / "registry.yaml").write_text("\n".join(registry) + "\n")
    pricing = [
        "currency: USD",
        "source_url: https://example.com/pricing",
        "reviewed_on: 2026-09-28",
        "reviewed_by: finops-analyst",
        "models:",
    ]
    for model, (inp, cached, out) in MODELS.items():
        pricing += [
            f"  - model: {model}",
            "    effective_from: 2026-01-01",
            f"    per_1m_tokens: {{input: {inp}, cached_input: {cached}, output: {out}}}",
        ]
    (root / "pricing.yaml").write_text("\n".join(pricing) + "\n")
    (root / "kit.yaml").write_text(
        "name: benchmark\ncurrency: USD\nrequests: {path: requests.parquet}\n"
        "registry: registry.yaml\npricing: pricing.yaml\n"
    )
    app_list = "[" + ", ".join(f"'{a}'" for a, _ in apps) + "]"
    team_list = "[" + ", ".join(f"'{t}'" for _, t in apps) + "]"
    model_list = "[" + ", ".join(f"'{m}'" for m in MODELS) + "]"
    con = duckdb.connect()
    con.execute(
        f"""COPY (
        WITH base AS (
            SELECT i, CAST(hash(i) % 1000000007 AS BIGINT) AS h,
                CAST(hash(i * 7919) % 1000000007 AS BIGINT) AS g
            FROM (SELECT * FROM range({rows - rows // 1000}) UNION ALL  -- 0.1 % logging duplicates
                  SELECT * FROM range({rows // 1000})) t(i)
        )
        SELECT 'req-' || lpad(CAST(i AS VARCHAR), 10, '0') AS request_id,
            TIMESTAMP '2026-10-01' + to_seconds(CAST(h % 2678400 AS BIGINT)) AS timestamp,
            CASE WHEN h % 50 = 0 THEN NULL ELSE {team_list}[1 + (g % 24)] END AS team,
            CASE WHEN h % 50 = 0 THEN NULL ELSE {app_list}[1 + (g % 24)] END AS application,
            ['production', 'production', 'staging', 'development'][1 + (h % 4)] AS environment,
            ['user_facing_chat', 'batch'][1 + (g % 2)] AS workload_class,
            'feature-' || (g % 40) AS feature,
            NULL AS job_id,
            'svc-' || (g % 24) AS caller_id,
            '/v1/chat/completions' AS endpoint,
            {model_list}[1 + ((h // 7) % 6)] AS model,
            CAST(100 + h % 4000 AS BIGINT) AS input_tokens,
            CAST(20 + g % 800 AS BIGINT) AS output_tokens,
            CAST((h % 4000) // 3 AS BIGINT) AS cached_input_tokens,
            CAST(0 AS BIGINT) AS reasoning_tokens,
            CAST(CASE WHEN g % 100 = 0 THEN 429 ELSE 200 END AS INTEGER) AS status_code,
            'k-' || i AS idempotency_key,
            false AS batch
        FROM base
    ) TO '{root / "requests.parquet"}' (FORMAT parquet)"""
    )
    return root / "kit.yaml"


# --- the three contenders, each run in a child process ---------------------------------------


def run_pipeline(config: Path) -> dict[str, float]:
    """load → attribute → price → allocate, plus the evidence files (what `run` does before the
    packet notebook renders it). Returns the seconds of each stage."""
    started = time.perf_counter()
    from allocation_kit import load_workspace, parse_period, period_ledger
    from allocation_kit.report import atomic_period_folder, write_evidence

    stages = {"imports": time.perf_counter() - started}
    workspace = load_workspace(config)
    period = parse_period("2026-10")
    with atomic_period_folder(config.parent / "reports", period.label) as folder:
        ledger = period_ledger(workspace, period, validate=False)  # validate_bench.py times GX
        stages |= {k: v for k, v in ledger.timings.items() if k != "validate"}
        started = time.perf_counter()
        write_evidence(folder, ledger, {"period": period.label})
        stages["evidence"] = time.perf_counter() - started
    return stages


def run_duckdb(config: Path) -> None:
    import duckdb

    con = duckdb.connect()
    prices = ", ".join(
        f"('{m}', {i}::DECIMAL(18,6), {c}::DECIMAL(18,6), {o}::DECIMAL(18,6))"
        for m, (i, c, o) in MODELS.items()
    )
    con.execute(
        f"""SELECT r.team, r.model, count(*),
            sum((r.input_tokens - r.cached_input_tokens) * p.i + r.cached_input_tokens * p.c
                + r.output_tokens * p.o)
        FROM read_parquet('{config.parent / "requests.parquet"}') r
        JOIN (VALUES {prices}) p(model, i, c, o) USING (model)
        GROUP BY ALL"""
    ).fetchall()


def run_read_all(config: Path) -> None:
    import duckdb

    con = duckdb.connect()
    source = "read_parquet('{}')".format(config.parent / "requests.parquet")
    described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    columns = ", ".join(name for name, *_ in described)
    con.execute(f"SELECT sum(hash({columns})) FROM {source}").fetchall()


def run_dedupe_floor(config: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(
        "SELECT count(*) - count(DISTINCT request_id) FROM read_parquet('{}')".format(
            config.parent / "requests.parquet"
        )
    ).fetchall()


def run_duckdb_dedupe(config: Path) -> None:
    import duckdb
    import yaml

    con = duckdb.connect()
    registry = yaml.safe_load((config.parent / "registry.yaml").read_text())
    apps = ", ".join(f"('{a['id']}', '{a['team']}')" for a in registry["applications"])
    prices = ", ".join(
        f"('{m}', {i}::DECIMAL(18,6), {c}::DECIMAL(18,6), {o}::DECIMAL(18,6))"
        for m, (i, c, o) in MODELS.items()
    )
    con.execute(
        f"""WITH r AS (SELECT DISTINCT * FROM read_parquet('{config.parent / "requests.parquet"}'))
        SELECT CASE WHEN r.application IS NULL AND r.team IS NULL THEN 'untagged'
                    ELSE 'allocated' END AS status,
            a.app_team, r.application, r.environment, count(*),
            sum(CASE WHEN r.status_code BETWEEN 200 AND 299
                THEN ((r.input_tokens - r.cached_input_tokens) * p.i
                      + r.cached_input_tokens * p.c + r.output_tokens * p.o) / 1000000
                ELSE 0 END)
        FROM r LEFT JOIN (VALUES {apps}) a(application, app_team) USING (application)
        LEFT JOIN (VALUES {prices}) p(model, i, c, o) USING (model)
        GROUP BY ALL"""
    ).fetchall()


def run_pandas(config: Path) -> None:
    from decimal import Decimal

    import pandas as pd
    import yaml

    frame = pd.read_parquet(config.parent / "requests.parquet")
    frame = frame.drop_duplicates()
    registry = yaml.safe_load((config.parent / "registry.yaml").read_text())
    apps = pd.DataFrame(registry["applications"])[["id", "team"]]
    apps.columns = ["application", "app_team"]
    frame = frame.merge(apps, on="application", how="left")
    prices = pd.DataFrame(
        [(m, float(i), float(c), float(o)) for m, (i, c, o) in MODELS.items()],
        columns=["model", "p_in", "p_cached", "p_out"],
    )
    frame = frame.merge(prices, on="model", how="left")
    billable = frame["status_code"].between(200, 299)
    frame["cost"] = (
        billable
        * (
            (frame["input_tokens"] - frame["cached_input_tokens"]) * frame["p_in"]
            + frame["cached_input_tokens"] * frame["p_cached"]
            + frame["output_tokens"] * frame["p_out"]
        )
        / 1e6
    )
    frame["status"] = "allocated"
    frame.loc[frame["application"].isna() & frame["team"].isna(), "status"] = "untagged"
    grouped = frame.groupby(["status", "app_team", "application", "environment"], dropna=False)
    result = grouped.agg(requests=("request_id", "size"), cost=("cost", "sum")).reset_index()
    Decimal(str(result["cost"].sum()))


CONTENDERS = {
    "pipeline": run_pipeline,
    "duckdb": run_duckdb,
    "read-all": run_read_all,
    "dedupe-floor": run_dedupe_floor,
    "duckdb-dedupe": run_duckdb_dedupe,
    "pandas": run_pandas,
}


def child(name: str, config: Path) -> None:
    started = time.perf_counter()
    stages = CONTENDERS[name](config)
    print(json.dumps({"seconds": time.perf_counter() - started, "stages": stages or {}}))


def child_run(script: str, name: str, args: list[str]) -> tuple[dict, float]:
    """(the JSON the child printed plus its CPU seconds as "cpu", of which "sys" in the kernel,
    and its minor page faults as "faults"; its peak RSS in MB) of
    `script --child NAME ARGS` run in a fresh process, so each contender's peak memory is its
    own."""
    proc = subprocess.Popen(
        [sys.executable, script, "--child", name, *args], stdout=subprocess.PIPE, text=True
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{name} failed with status {status}")
    cpu = {"cpu": usage.ru_utime + usage.ru_stime, "sys": usage.ru_stime, "faults": usage.ru_minflt}
    return json.loads(out) | cpu, usage.ru_maxrss / 1024


def measure(name: str, config: Path) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """(wall seconds inside the child, peak RSS in MB, the whole child's CPU seconds, kernel
    seconds and page faults, seconds per stage) of one run in a fresh process. The pipeline's
    earlier output is removed first: an unsigned period folder without its review log counts as
    locked, and the benchmark times a first run, not a reopening."""
    shutil.rmtree(config.parent / "reports", ignore_errors=True)
    out, peak = child_run(__file__, name, ["--config", str(config)])
    return out["seconds"], peak, {k: out[k] for k in ("cpu", "sys", "faults")}, out["stages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip", default="", help="comma-separated contenders to skip")
    parser.add_argument("--child", choices=list(CONTENDERS))
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="allocation-kit-bench-"))
    started = time.perf_counter()
    config = write_workspace(workdir, args.rows)
    size = (workdir / "requests.parquet").stat().st_size / 1e6
    print(f"generated {args.rows:,} rows ({size:.0f} MB Parquet) in "
          f"{time.perf_counter() - started:.1f} s at {workdir}")  # fmt: skip
    results = {}
    skip = set(filter(None, args.skip.split(",")))
    for name in CONTENDERS:
        if name in skip:
            continue
        runs = [measure(name, config) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        usage = {k: statistics.median(r[2][k] for r in runs) for k in runs[0][2]}
        cpu, kernel, faults = usage["cpu"], usage["sys"], usage["faults"]
        results[name] = (seconds, peak)
        print(f"{name:<13} median {seconds:7.2f} s  CPU {cpu:6.2f} s (sys {kernel:5.2f}, "
              f"{faults / 1000:5.0f}k page faults)  peak RSS {peak:7.0f} MB  "
              f"runs {', '.join(f'{r[0]:.2f}' for r in runs)}")  # fmt: skip
        if runs[0][3]:  # the median of each stage
            stages = {k: statistics.median(r[3][k] for r in runs) for k in runs[0][3]}
            print(" " * 14 + "  ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    ratios = [  # (numerator, denominator): how many times the first takes the second's time
        ("pipeline", "duckdb"),
        ("read-all", "duckdb"),
        ("dedupe-floor", "duckdb"),
        ("pipeline", "read-all"),
        ("duckdb-dedupe", "pipeline"),
        ("pandas", "pipeline"),
    ]
    for top, bottom in ratios:
        if top in results and bottom in results:
            print(f"{top + ' / ' + bottom:<26} = {results[top][0] / results[bottom][0]:.2f}x")


if __name__ == "__main__":
    main()

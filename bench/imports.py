"""Bulk import: `leadflow import` of a generated HubSpot-style export, against reading the CSV.

    .venv/bin/python -m bench.imports                # --rows 100000 --real-rows 100000

Each figure runs in a process of its own, which reports its own peak RSS (getrusage):
- baseline: reading and parsing the CSV row by row with the csv module, nothing else;
- dry run: `leadflow import --dry-run` of the same file (mapping, validation, encoding; the
  job's progress written to the database every 500 rows), at a tenth of the rows and at all of
  them, so a peak RSS that does not grow with the file shows rows are not held in memory;
- import: `leadflow import` of `--real-rows` rows for real, through the broker (acks) and the
  idempotency store, into a fresh database.
Times start after Python's module imports: they are the command's (settings, the database's
migration check, the broker's connection, the file's hash) and the rows'.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.load import add_broker_option, bench_database, service_env, start_broker

_CHILD = """
import json, resource, sys, time
kind, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
code = 0
if kind == "baseline":
    import csv
    started = time.perf_counter()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
else:
    from leadflow.cli import main
    started = time.perf_counter()  # the imports of Python modules are not counted
    code = main(["import", path, "--preset", "hubspot", "--json", *sys.argv[4:]])
seconds = time.perf_counter() - started
with open(out, "w") as handle:
    json.dump({"seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               "code": code}, handle)
"""

HEADER = (
    "Record ID,First Name,Last Name,Email,Phone Number,Job Title,Company Name,"
    "Company Domain Name,Industry,Number of Employees,Annual Revenue,Country/Region,"
    "Lifecycle Stage,Contact owner,Create Date,Last Activity Date\n"
)
STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")


def write_export(path: Path, rows: int) -> Path:
    """A HubSpot-style contact export of `rows` rows (1 in 200 with a bad date)."""
    with path.open("w") as handle:
        handle.write(HEADER)
        for i in range(rows):
            date = "31/31/2024" if i % 200 == 7 else f"2023-{1 + i % 12:02d}-{1 + i % 28:02d} 09:30"
            handle.write(
                f"{i + 1},First{i},Last{i},person{i}@co{i % 997}.example,"
                f"+1 617-555-{i % 10000:04d},"
                f"VP Operations,Company {i % 997},co{i % 997}.example,Software,{50 + i % 5000},"
                f'"{(i % 90 + 1) * 100_000:,}",United States,{STAGES[i % 5]},Owner {i % 7},'
                f"{date},2024-01-08 16:02\n"
            )
    return path


def measure(kind: str, path: Path, env: dict[str, str], *extra: str) -> dict[str, float]:
    """Run one figure in a fresh process; its seconds and peak RSS."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(path), out.name, *extra],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(Path(out.name).read_text())  # type: ignore[no-any-return]


def line(name: str, rows: int, result: dict[str, float]) -> str:
    """One figure as a table row."""
    rate = rows / result["seconds"]
    return f"| {name} | {rows:,} | {rate:,.0f} rows/s | {result['maxrss_kb'] / 1024:,.0f} MB |"


def main() -> None:
    """Generate the exports, run every figure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--real-rows", type=int, default=100_000)
    add_broker_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        small = write_export(tmp / "small.csv", max(args.rows // 10, 1))
        full = write_export(tmp / "full.csv", args.rows)
        real = write_export(tmp / "real.csv", args.real_rows)
        broker = start_broker(args.broker, tmp)
        bootstrap = broker.start()
        try:
            env = service_env(bootstrap=bootstrap, database_url=bench_database(tmp))
            env.pop("LEADFLOW_AUTH")
            env["PYTHONPATH"] = os.getcwd()
            rows = [
                line("baseline: csv.DictReader", args.rows, measure("baseline", full, env)),
                line(
                    "dry run",
                    args.rows // 10,
                    measure("import", small, env, "--dry-run"),
                ),
                line("dry run", args.rows, measure("import", full, env, "--dry-run")),
                line(f"import ({args.broker})", args.real_rows, measure("import", real, env)),
            ]
        finally:
            broker.stop()
    print("| figure | rows | rate | peak RSS |\n| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

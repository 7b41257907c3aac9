"""Wall time and test count of each test lane, with the machine's load: rerun on an idle machine.

    python benchmarks/lanes.py                 # the fast lane, then the whole suite
    python benchmarks/lanes.py --lane fast     # only the fast lane

Prints a markdown table: lane, marker expression, tests passed, failed and deselected, seconds, and the
1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

LANES = {
    "fast": "not slow and not integration",
    "all": None,
}
REPOSITORY = Path(__file__).resolve().parents[1]


def run_lane(expression: str | None) -> dict:
    """Run pytest on one lane; its counts from pytest's last line, its wall time, the load around it."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if expression:
        command += ["-m", expression]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last_line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (passed|failed|deselected|skipped)", last_line)}
    return {"seconds": seconds, "load_before": load_before, "load_after": os.getloadavg()[0], **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lane", choices=sorted(LANES), action="append", help="a lane to time (repeatable)")
    lanes = parser.parse_args().lane or list(LANES)
    print("| lane | -m | passed | failed | deselected | seconds | load before | load after |")
    print("|---|---|---|---|---|---|---|---|")
    for lane in lanes:
        result = run_lane(LANES[lane])
        print(
            f"| {lane} | {LANES[lane] or '(all)'} | {result.get('passed', 0)} | {result.get('failed', 0)} | "
            f"{result.get('deselected', 0)} | {result['seconds']:.0f} | {result['load_before']:.1f} | "
            f"{result['load_after']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""`make bench`: every benchmark in turn, each printing its own figures.
Benchmarks are not tests: they assert nothing and CI does not run them."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["loc.py", "bench_sign.py", "bench_audit_search.py", "bench_grants.py", "bench_report_page.py",
           "bench_ticket_list.py", "bench_move.py",
           "bench_cold_start.py",
           "bench_slow_clients.py"]

failed = []
for name in BENCHES:
    print(f"\n######## {name} ########", flush=True)
    if subprocess.run([sys.executable, str(HERE / name)], cwd=HERE.parent).returncode != 0:
        failed.append(name)
sys.exit(f"failed: {', '.join(failed)}" if failed else 0)

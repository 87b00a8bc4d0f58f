"""A finished run exits cleanly: status 0, every time.

pyarrow reading a Python stream could leave the last reference to it on a pool thread, which then
aborted the process at interpreter exit ("terminate called without an active exception", -6) in
about 1 of 15 runs; ``dataset.reader.read_parquet`` reads on the calling thread instead."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from crawl.serve import LocalServer, Route

from pipeline_helpers import jpeg

HOST = "exit.altcap.test"
RUNS = 20


def test_a_short_job_exits_with_status_0_every_time(tmp_path):
    routes = {f"/{n}.jpg": Route(jpeg(420 + n, 410)) for n in range(8)}
    listing = tmp_path / "list.tsv"
    listing.write_text("".join(f"photo number {n}\thttp://{HOST}/{n}.jpg\n" for n in range(8)))
    with LocalServer(routes) as server:
        settings = ["download.allow_private_addresses=true", "text.preset=laion", "shards.samples_per_shard=3",
                    f'download.connect_to=["{HOST}:80:127.0.0.1:{server.port}"]']

        def run(n: int) -> tuple[int, str]:
            command = [sys.executable, "-m", "pipeline.cli", "run", "--input", str(listing),
                       "--output", str(tmp_path / f"out-{n}"), "--direct_running_mode=in_memory",
                       *[a for s in settings for a in ("--set", s)]]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            return done.returncode, done.stderr[-500:]

        with ThreadPoolExecutor(2) as pool:  # the abort came from the launcher's own reads at exit
            results = list(pool.map(run, range(RUNS)))
    assert [status for status, _ in results] == [0] * RUNS, [err for status, err in results if status]
    assert all("terminate called" not in err for _, err in results)

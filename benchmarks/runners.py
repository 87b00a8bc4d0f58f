"""The same job under each Beam runner set-up that runs offline, side by side: wall time and
records/s, with the ratio to the DirectRunner in one process.

    .venv/bin/python benchmarks/runners.py [--images 200] [--workers 2]

The job: a TSV of ``--images`` distinct crops of scikit-image's CC0 photos, served on 127.0.0.1
under a fixed host name, through the text rules, download, image rules and resize, and image
dedup, in shards of 50. Set-ups: the DirectRunner in one process (``in_memory``) and with
``--workers`` worker processes (``multi_processing``), the PortableRunner with an embedded job
service and LOOPBACK workers, and the PortableRunner against a separate job server with an
EXTERNAL pool of ``--workers`` worker processes (``tests/test_runners.py`` checks that all four
write the same output). Wall time includes the runner's start-up, which dominates small jobs.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as photos

from crawl.serve import LocalServer, Route
from pipeline.config import load_config
from pipeline.local_cluster import job_server
from pipeline.run import run

BIN = Path(sys.executable).parent
HOST = "img.altcap.test"
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def crops(n: int) -> list[bytes]:
    rng, found = np.random.default_rng(0), []
    for i in range(n):
        array = getattr(photos, SOURCES[i % len(SOURCES)])()
        side = int(min(array.shape[:2]) * rng.uniform(0.4, 1.0))
        top, left = rng.integers(0, array.shape[0] - side + 1), rng.integers(0, array.shape[1] - side + 1)
        buffer = io.BytesIO()
        Image.fromarray(array[top:top + side, left:left + side]).convert("RGB").resize((480, 480)).save(buffer, "JPEG")
        found.append(buffer.getvalue())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    images = crops(args.images)
    rows = []
    with job_server(args.workers) as pool_args, \
            LocalServer({f"/{i}.jpg": Route(blob) for i, blob in enumerate(images)}) as server, \
            tempfile.TemporaryDirectory() as work:
        setups = {
            "direct, 1 process": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
            f"direct, {args.workers} processes": ["--direct_running_mode=multi_processing",
                                                  f"--direct_num_workers={args.workers}"],
            "portable embed, LOOPBACK": ["--runner=PortableRunner", "--job_endpoint=embed",
                                         "--environment_type=LOOPBACK"],
            f"job server, {args.workers} EXTERNAL workers": pool_args,
        }
        listing = Path(work) / "pairs.tsv"
        listing.write_text("".join(f"photo number {i} of the gallery\thttp://{HOST}/{i}.jpg\n"
                                   for i in range(len(images))))
        config = load_config(None, ["download.allow_private_addresses=true", "download.retries=0",
                                    "download.host_rps=0",  # one host serves all: runners are measured
                                    f'download.connect_to=["{HOST}:80:127.0.0.1:{server.port}"]',
                                    "text.preset=laion", "shards.samples_per_shard=50"])
        for name, beam_args in setups.items():
            started = time.perf_counter()
            stats = run([str(listing)], os.path.join(work, name.replace(" ", "_").replace(",", "")), config,
                        beam_args=beam_args)
            wall = time.perf_counter() - started
            rows.append((name, wall, stats["funnel"][0]["in"], stats["samples"], stats["check"]["ok"]))
    if not rows or any(samples == 0 for _, _, _, samples, _ in rows):
        sys.exit("a set-up wrote no samples: nothing to compare")
    base = rows[0][1]
    print(f"{args.images} images, shards of 50; {os.cpu_count()} cores\n")
    print(f"{'runner set-up':<30} {'wall s':>8} {'records/s':>10} {'samples':>8} {'check':>6} {'vs direct':>10}")
    for name, wall, records, samples, ok in rows:
        print(f"{name:<30} {wall:>8.1f} {records / wall:>10.1f} {samples:>8} {'ok' if ok else 'FAIL':>6} "
              f"{base / wall:>9.2f}x")


if __name__ == "__main__":
    main()

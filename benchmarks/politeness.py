"""What politeness costs: the same crawl with the host limits off, at their defaults and strict,
side by side: wall time, records/s, and what the busiest host saw (requests in flight at once,
requests in its busiest second) against its limits.

    .venv/bin/python benchmarks/politeness.py [--images 300] [--workers 2] [--big 0.4]

The crawl: ``--images`` distinct JPEGs, a ``--big`` share of them on one host and the rest on 30
small hosts, each answer delayed 20 ms (a near server's latency), all on 127.0.0.1 under fixed host
names (``download.connect_to``), run by the DirectRunner on ``--workers`` worker processes in shards
of 25. A limit that holds shows as the big host's figures staying at or under it; its cost as the
wall time: the big host's images cannot come faster than ``host_rps``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from crawl.serve import LocalServer, Route
from pipeline.config import load_config
from pipeline.run import run

BIG, SMALL = "big.altcap.test", "small-{}.altcap.test"
SMALL_HOSTS = 30
LATENCY_S = 0.02
SETTINGS = {  # name -> (per_host, host_rps)
    "limits off": (1000, 0),
    "defaults": (16, 20),
    "strict": (4, 5),
}


def jpeg(i: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320 + i % 200, 320 + i // 200), (i % 256, (7 * i) % 256, (13 * i) % 256)).save(buffer, "JPEG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big", type=float, default=0.4, help="share of the images on the one big host")
    args = parser.parse_args()
    on_big = round(args.images * args.big)
    big = LocalServer({f"/{i}.jpg": Route(jpeg(i), delay=LATENCY_S) for i in range(on_big)})
    small = LocalServer({f"/{i}.jpg": Route(jpeg(i), delay=LATENCY_S) for i in range(on_big, args.images)})
    rows = []
    with big, small, tempfile.TemporaryDirectory() as work:
        lines = [f"photo {i} of the big host\thttp://{BIG}/{i}.jpg" for i in range(on_big)]
        lines += [f"photo {i} of a small host\thttp://{SMALL.format(i % SMALL_HOSTS)}/{i}.jpg"
                  for i in range(on_big, args.images)]
        listing = Path(work) / "pairs.tsv"
        listing.write_text("\n".join(lines) + "\n")
        mappings = [f"{BIG}:80:127.0.0.1:{big.port}"]
        mappings += [f"{SMALL.format(n)}:80:127.0.0.1:{small.port}" for n in range(SMALL_HOSTS)]
        for name, (per_host, host_rps) in SETTINGS.items():
            config = load_config(None, [
                "download.allow_private_addresses=true", "download.retries=0",
                f"download.connect_to={json.dumps(mappings)}",
                f"download.per_host={per_host}", f"download.host_rps={host_rps}", "download.threads=32",
                "text.preset=laion", "image.min_side=100", "shards.samples_per_shard=25"])
            big.arrivals.clear()
            big.max_in_flight = 0
            started = time.perf_counter()
            stats = run([str(listing)], os.path.join(work, name.replace(" ", "_")), config,
                        beam_args=["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"])
            wall = time.perf_counter() - started
            rows.append((name, per_host, host_rps, wall, stats["samples"], big.max_in_flight,
                         big.busiest_second()))
    if any(row[4] == 0 for row in rows):
        sys.exit("a setting wrote no samples: nothing was measured")
    print(f"{args.images} images, {on_big} on one host, {args.images - on_big} on {SMALL_HOSTS} others; "
          f"{args.workers} worker processes, {os.cpu_count()} cores\n")
    print(f"{'limits':<11} {'per_host':>8} {'host_rps':>8} {'wall s':>7} {'records/s':>9} {'samples':>7} "
          f"{'big: in flight':>14} {'big: busiest s':>14} {'vs off':>7}")
    base = rows[0][3]
    for name, per_host, host_rps, wall, samples, in_flight, busiest in rows:
        print(f"{name:<11} {per_host:>8} {host_rps or 'off':>8} {wall:>7.1f} {args.images / wall:>9.1f} {samples:>7} "
              f"{in_flight:>14} {busiest:>14} {base / wall:>6.2f}x")


if __name__ == "__main__":
    main()

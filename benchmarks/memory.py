"""Peak memory of a whole `altcap run` at N and 10N records: does it stream?

    .venv/bin/python benchmarks/memory.py [--records 500] [--scale 10] [--workers 2] [--per-shard 250]
                                          [--kind list --kind warc]

For each input kind, the same job runs on ``--records`` and on ``--scale`` times as many records:
``altcap run`` as a child process (the launcher) with the DirectRunner's ``multi_processing`` mode
and ``--workers`` worker processes, which is what a local run uses. The process tree is sampled
with psutil every 50 ms; the table gives the peak of the tree's summed RSS (a page shared by two
processes counts in both, as in ``benchmarks/download.py``), the ratio 10N/N (target: <= 1.1x, the
design's "records stream; no stage holds a whole input in memory"), the growth per added record,
and the peak of each role: the launcher, all workers together, the biggest single worker.

Inputs: ``list`` is a TSV of "caption<TAB>URL"; ``warc`` a gzip WARC of pages with 10 images each,
written as the demo writes them. Every record is a distinct image (crops of scikit-image's CC0
photos, 416 px JPEG: over the default image.min_side of 401), served on 127.0.0.1 by
crawl/serve.py's LocalServer under a fixed host name (``download.connect_to``). Settings: the
laion text preset (every caption passes), no rate limit, shards of ``--per-shard`` samples,
everything else at its default (image dedup on). ``--trace FILE`` keeps every sample, to see when
each role grows.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image
from skimage import data as photos

from crawl.serve import LocalServer, Route
from pipeline.demo import gallery_html, warc_response

BIN = Path(sys.executable).parent
HOST = "img.altcap.test"
PAGE_URL = "http://pages.altcap.test"
IMAGES_PER_PAGE = 10
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "camera",
           "moon", "coins", "brick", "grass", "gravel")


def images(count: int, side: int = 416) -> list[bytes]:
    """``count`` distinct JPEG crops (random position and size) of the CC0 photos."""
    rng, found = np.random.default_rng(0), []
    arrays = [np.asarray(getattr(photos, name)()) for name in SOURCES]
    for i in range(count):
        array = arrays[i % len(arrays)]
        crop = int(min(array.shape[:2]) * rng.uniform(0.3, 1.0))
        top, left = rng.integers(0, array.shape[0] - crop + 1), rng.integers(0, array.shape[1] - crop + 1)
        buffer = io.BytesIO()
        Image.fromarray(array[top:top + crop, left:left + crop]).convert("RGB").resize((side, side)).save(
            buffer, "JPEG", quality=85)
        found.append(buffer.getvalue())
    return found


def caption(i: int) -> str:
    return f"photo number {i} of the gallery"


def write_list(path: Path, records: int) -> None:
    path.write_text("".join(f"{caption(i)}\thttp://{HOST}/{i}.jpg\n" for i in range(records)))


def write_warc(path: Path, records: int) -> None:
    with path.open("wb") as handle:
        for page, first in enumerate(range(0, records, IMAGES_PER_PAGE)):
            last = min(first + IMAGES_PER_PAGE, records)
            shown = [(f"http://{HOST}/{i}.jpg", caption(i)) for i in range(first, last)]
            handle.write(warc_response(f"{PAGE_URL}/{page}.html", gallery_html(f"Gallery page {page}", shown)))


def role(process: psutil.Process, launcher: int) -> str:
    if process.pid == launcher:
        return "launcher"
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "other"
    return "worker" if "worker" in command else "other"


def measure(command: list[str]) -> dict:
    """Run ``command``; the peak summed RSS of its process tree and of each role, and wall time."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {"tree": 0, "launcher": 0, "workers": 0, "biggest worker": 0}
    samples, done = [], threading.Event()
    roles: dict[int, str] = {}

    def sample():
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                tree = []
            by_role = {"launcher": 0, "worker": 0, "other": 0}
            biggest = 0
            for proc in tree:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                kind = roles.setdefault(proc.pid, role(proc, process.pid))
                by_role[kind] += rss
                if kind == "worker":
                    biggest = max(biggest, rss)
            total = sum(by_role.values())
            samples.append((time.perf_counter() - started, total, by_role["launcher"], by_role["worker"]))
            peaks["tree"] = max(peaks["tree"], total)
            peaks["launcher"] = max(peaks["launcher"], by_role["launcher"])
            peaks["workers"] = max(peaks["workers"], by_role["worker"])
            peaks["biggest worker"] = max(peaks["biggest worker"], biggest)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"altcap run failed:\n{err.decode(errors='replace')[-3000:]}")
    return {"wall_s": time.perf_counter() - started, "workers_seen": sum(r == "worker" for r in roles.values()),
            "samples": samples, **{f"{name}_mb": value / 2**20 for name, value in peaks.items()}}


def altcap_command(input_path: Path, out: Path, port: int, args) -> list[str]:
    settings = ["text.preset=laion", "download.allow_private_addresses=true", "download.retries=0",
                "download.host_rps=0", f'download.connect_to=["{HOST}:80:127.0.0.1:{port}"]',
                f"shards.samples_per_shard={args.per_shard}"]
    command = [str(BIN / "altcap"), "run", "--input", str(input_path), "--output", str(out), "--overwrite",
               "--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"]
    for setting in settings:
        command += ["--set", setting]
    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500, help="N (default 500)")
    parser.add_argument("--scale", type=int, default=10, help="the large run has N x SCALE records (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="Beam worker processes (default 2)")
    parser.add_argument("--per-shard", type=int, default=250, help="shards.samples_per_shard (default 250)")
    parser.add_argument("--kind", action="append", choices=["list", "warc"], help="input kinds (default both)")
    parser.add_argument("--trace", metavar="FILE", help="write every sample (s, tree, launcher, workers bytes) as JSON")
    args = parser.parse_args()
    kinds = args.kind or ["list", "warc"]
    sizes = [args.records, args.records * args.scale]
    started = time.perf_counter()
    blobs = images(sizes[-1])
    print(f"{len(blobs)} images ({sum(map(len, blobs)) / 2**20:.0f} MB) made in {time.perf_counter() - started:.0f} s",
          flush=True)
    results, traces = {}, {}
    with LocalServer({f"/{i}.jpg": Route(blob) for i, blob in enumerate(blobs)}) as server, \
            tempfile.TemporaryDirectory(prefix="altcap-memory-") as work:
        for kind in kinds:
            for records in sizes:
                input_path = Path(work) / (f"pairs-{records}.tsv" if kind == "list" else f"pages-{records}.warc.gz")
                (write_list if kind == "list" else write_warc)(input_path, records)
                out = Path(work) / f"out-{kind}-{records}"
                measured = measure(altcap_command(input_path, out, server.port, args))
                stats = json.loads((out / "stats.json").read_text())
                measured.update(samples_written=stats["samples"], check=stats["check"]["ok"])
                traces[f"{kind}-{records}"] = measured.pop("samples")
                results[kind, records] = measured
                print(f"  {kind} {records}: {measured['tree_mb']:.0f} MB peak, {measured['wall_s']:.0f} s, "
                      f"{measured['samples_written']} samples written", flush=True)
    if args.trace:
        Path(args.trace).write_text(json.dumps(traces))
    print(f"\naltcap run, DirectRunner multi_processing, {args.workers} workers, shards of {args.per_shard}; "
          f"{os.cpu_count()} cores")
    print("peak RSS summed over the process tree (launcher + Beam workers), sampled every 50 ms\n")
    small, large = sizes
    print(f"{'input':<6} {'records':>8} {'peak MB':>8} {'records':>8} {'peak MB':>8} {'ratio':>6} {'KB/record':>9}   "
          f"{'launcher MB':>13} {'workers MB':>12} {'1 worker MB':>13} {'wall s':>9} {'samples':>11}")
    for kind in kinds:
        a, b = results[kind, small], results[kind, large]
        print(f"{kind:<6} {small:>8} {a['tree_mb']:>8.0f} {large:>8} {b['tree_mb']:>8.0f} "
              f"{b['tree_mb'] / a['tree_mb']:>5.2f}x {(b['tree_mb'] - a['tree_mb']) * 1024 / (large - small):>9.1f}   "
              f"{a['launcher_mb']:>6.0f}/{b['launcher_mb']:<6.0f} {a['workers_mb']:>5.0f}/{b['workers_mb']:<6.0f} "
              f"{a['biggest worker_mb']:>6.0f}/{b['biggest worker_mb']:<6.0f} {a['wall_s']:>4.0f}/{b['wall_s']:<4.0f} "
              f"{a['samples_written']:>5}/{b['samples_written']:<5}")
    print("\n(role columns: N / 10N; target ratio <= 1.1x)")
    if not all(r["check"] for r in results.values()):
        sys.exit("a run's funnel check failed")


if __name__ == "__main__":
    main()

"""Download + resize throughput: altcap beside img2dataset, same fixture, same settings.

    .venv/bin/python benchmarks/download.py [--urls 2400] [--runs 3] [--processes 2] [--threads 32]

Builds (once, cached under benchmarks/.cache/) a fixture of real-photo-derived images: crops of
the CC0 photos scikit-image ships, re-encoded at web sizes (long side log-uniform 300-2400 px),
plus PNGs, tiny images, extreme aspect ratios, corrupt files, 404s and X-Robots-Tag: noai. A
server in its own process serves them on 127.0.0.1. Then img2dataset and altcap run on the same
parquet list with equal settings (256 px center_crop, jpg q95, sha256, the same processes x
threads, no filtering, no retries), alternating, and the table shows successes/s for the whole
process and for the steady state (the middle 80% of the requests the server saw), CPU seconds and
peak RSS summed over each tool's whole process tree, with the altcap/img2dataset ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from crawl.serve import LocalServer, Route

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
BIN = Path(sys.executable).parent
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "camera.png", "coins.png", "ihc.png",
          "brick.png", "grass.png", "gravel.png", "moon.png"]
# share of each kind of URL in the fixture
MIX = [("jpeg", 0.74), ("png", 0.08), ("tiny", 0.04), ("extreme", 0.04), ("corrupt", 0.03),
       ("missing", 0.04), ("noai", 0.03)]


# --- fixture ------------------------------------------------------------------------------------

def source_photos() -> list[Image.Image]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    return [Image.open(folder / name).convert("RGB") for name in PHOTOS]


def web_photo(photo: Image.Image, rng: random.Random, long_side: int) -> Image.Image:
    """A random crop of ``photo`` (aspect 0.6-1.7) scaled to ``long_side``."""
    width, height = photo.size
    aspect = rng.uniform(0.6, 1.7)
    crop_w = min(width, int(height * aspect)) * rng.uniform(0.75, 1.0)
    crop_h = min(height, crop_w / aspect)
    crop_w = crop_h * aspect
    left, top = rng.uniform(0, width - crop_w), rng.uniform(0, height - crop_h)
    crop = photo.crop((int(left), int(top), int(left + crop_w), int(top + crop_h)))
    scale = long_side / max(crop.size)
    return crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                       Image.Resampling.LANCZOS)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def build_fixture(count: int, folder: Path, seed: int = 7) -> list[dict]:
    """Write the fixture's files and manifest; returns [{path, kind, caption, headers}]."""
    rng = random.Random(seed)
    photos = source_photos()
    kinds = [kind for kind, share in MIX for _ in range(round(share * count))]
    kinds += ["jpeg"] * (count - len(kinds))
    rng.shuffle(kinds)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index, kind in enumerate(kinds):
        photo = photos[index % len(photos)]
        name = f"img/{index:05d}.{'png' if kind == 'png' else 'gif' if kind == 'tiny' else 'jpg'}"
        item = {"path": "/" + name, "kind": kind, "caption": f"photo {index} ({kind})",
                "headers": {}}
        if kind in ("jpeg", "noai"):
            long_side = round(math.exp(rng.uniform(math.log(300), math.log(2400))))
            body = encoded(web_photo(photo, rng, long_side), "JPEG", quality=rng.randint(80, 95),
                           progressive=rng.random() < 0.1)
            if kind == "noai":
                item["headers"] = {"X-Robots-Tag": "noai, noimageai"}
        elif kind == "png":
            body = encoded(web_photo(photo, rng, rng.randint(300, 1000)), "PNG")
        elif kind == "tiny":
            body = encoded(web_photo(photo, rng, rng.choice([1, 8, 16, 32])), "GIF")
        elif kind == "extreme":
            strip = web_photo(photo, rng, 1600).crop((0, 0, 1600, rng.randint(60, 200)))
            body = encoded(strip if rng.random() < 0.5 else strip.transpose(Image.Transpose.ROTATE_90),
                           "JPEG", quality=90)
        elif kind == "corrupt":
            whole = encoded(web_photo(photo, rng, 800), "JPEG", quality=90)
            body = whole[: len(whole) // 3] if rng.random() < 0.5 else rng.randbytes(5000)
        else:  # missing: no file, the server answers 404
            body = None
        if body is not None:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(body)
        manifest.append(item)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def load_fixture(count: int) -> tuple[Path, list[dict]]:
    folder = CACHE / f"download-fixture-{count}"
    if not (folder / "manifest.json").exists():
        print(f"building the fixture of {count} URLs in {folder} ...", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        build_fixture(count, folder)
    return folder, json.loads((folder / "manifest.json").read_text())


# --- server in its own process, recording when each request arrived ----------------------------

class TimedServer(LocalServer):
    def __init__(self, routes):
        super().__init__(routes)
        self.arrivals: list[float] = []

    def _accept(self, request):
        self.arrivals.append(time.time())
        return super()._accept(request)


def serve(folder: str, manifest: list[dict], pipe) -> None:
    routes = {}
    for item in manifest:
        path = Path(folder) / item["path"].lstrip("/")
        if path.exists():
            ctype = "image/png" if item["kind"] == "png" else (
                "image/gif" if item["kind"] == "tiny" else "image/jpeg")
            routes[item["path"]] = Route(path.read_bytes(), content_type=ctype,
                                         headers=item["headers"])
    with TimedServer(routes) as server:
        pipe.send(server.port)
        while True:
            command = pipe.recv()
            if command == "stop":
                return
            pipe.send(server.arrivals)
            server.arrivals = []


# --- running a tool and measuring its process tree ----------------------------------------------

def measure(command: list[str], env: dict) -> dict:
    """Run ``command``; wall time, CPU seconds and peak RSS of its whole process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    peak = [0]
    cpu_seen: dict[int, float] = {}  # last CPU time seen per process, for processes never reaped
    done = threading.Event()

    def sample():
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                tree = []
            rss = 0
            for proc in tree:
                try:
                    with proc.oneshot():
                        rss += proc.memory_info().rss
                        times = proc.cpu_times()
                        cpu_seen[proc.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    ended = time.time()
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{err.decode(errors='replace')[-3000:]}")
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(reaped, sum(cpu_seen.values()))
    return {"started": started, "wall_s": ended - started, "cpu_s": cpu,
            "peak_rss_mb": peak[0] / 2**20}


def count_img2dataset(out: Path) -> int:
    return sum(json.loads(p.read_text())["successes"] for p in out.glob("*_stats.json"))


def count_altcap(out: Path) -> int:
    return json.loads((out / "stats.json").read_text())["samples"]


def img2dataset_command(listing: Path, out: Path, args) -> list[str]:
    return [str(BIN / "img2dataset"), "--url_list", str(listing), "--input_format", "parquet",
            "--url_col", "url", "--caption_col", "caption", "--output_folder", str(out),
            "--output_format", "webdataset", "--image_size", "256", "--resize_mode", "center_crop",
            "--encode_format", "jpg", "--encode_quality", "95", "--processes_count",
            str(args.processes), "--thread_count", str(args.threads), "--number_sample_per_shard",
            str(args.per_shard), "--timeout", "10", "--retries", "0", "--extract_exif", "False",
            "--compute_hash", "sha256",
            "--distributor", "multiprocessing"]


def altcap_command(listing: Path, out: Path, args) -> list[str]:
    settings = ["text.preset=laion", "text.max_repeats=0",  # the captions are "photo 12 (jpeg)": keep them all
                "image.formats=jpeg,png,gif,webp,bmp,tiff,mpo", "image.min_side=1",
                "image.max_aspect_ratio=1000000", "image.allow_animated=true",
                "dedup.url=none", "dedup.image=false", "resize.image_size=256",
                "resize.resize_mode=center_crop", "resize.encode_format=jpg",
                "resize.encode_quality=95", f"download.threads={args.threads}",
                f"download.per_host={args.threads}", "download.host_rps=0", "download.timeout=10", "download.retries=0",
                "download.allow_private_addresses=true",
                f"shards.samples_per_shard={args.per_shard}"]
    command = [str(BIN / "altcap"), "run", "--input", str(listing), "--output", str(out),
               "--overwrite", "--direct_running_mode=multi_processing",
               f"--direct_num_workers={args.processes}"]
    for setting in settings:
        command += ["--set", setting]
    return command


class MeasuredNothing(RuntimeError):
    """A tool fetched nothing: a setting filters the fixture out, or the tool broke."""


def steady_rate(arrivals: list[float], success_paths: int, total_paths: int) -> float:
    """Successes/s over the middle 80% of requests (start-up and tail left out)."""
    if len(arrivals) < 10 or not success_paths:
        raise MeasuredNothing(f"{len(arrivals)} requests reached the server and {success_paths} images were "
                              f"written of {total_paths}: nothing to measure")
    arrivals = sorted(arrivals)
    low, high = arrivals[len(arrivals) // 10], arrivals[(len(arrivals) * 9) // 10]
    in_window = len(arrivals) * 0.8
    return in_window * (success_paths / total_paths) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=2400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--per-shard", type=int, default=200)
    args = parser.parse_args()

    folder, manifest = load_fixture(args.urls)
    kinds = {k: sum(1 for i in manifest if i["kind"] == k) for k, _ in MIX}
    print(f"fixture: {len(manifest)} URLs " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    work = Path(tempfile.mkdtemp(prefix="altcap-bench-"))
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(str(folder), manifest, child), daemon=True)
    server.start()
    port = parent.recv()
    listing = work / "list.parquet"
    pq.write_table(pa.Table.from_pylist(
        [{"url": f"http://127.0.0.1:{port}{i['path']}", "caption": i["caption"]} for i in manifest]),
        listing)
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONWARNINGS="ignore")
    tools = {"img2dataset": (img2dataset_command, count_img2dataset),
             "altcap": (altcap_command, count_altcap)}
    results: dict[str, list[dict]] = {name: [] for name in tools}
    try:
        for run in range(args.runs):
            order = list(tools) if run % 2 == 0 else list(reversed(tools))
            for name in order:
                command_of, count_of = tools[name]
                out = work / f"{name}-{run}"
                shutil.rmtree(out, ignore_errors=True)
                parent.send("arrivals")
                parent.recv()  # forget earlier requests
                row = measure(command_of(listing, out, args), env)
                parent.send("arrivals")
                arrivals = parent.recv()
                row["successes"] = count_of(out)
                row["whole"] = row["successes"] / row["wall_s"]
                try:
                    row["steady"] = steady_rate(arrivals, row["successes"], len(manifest))
                except MeasuredNothing as err:
                    raise MeasuredNothing(f"{name}: {err}") from None
                results[name].append(row)
                print(f"  run {run + 1} {name:<12} {row['successes']:5d} ok  "
                      f"{row['whole']:7.1f}/s whole  {row['steady']:7.1f}/s steady  "
                      f"{row['cpu_s']:6.1f} cpu-s  {row['peak_rss_mb']:6.0f} MB", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        parent.send("stop")
        server.join(5)
        shutil.rmtree(work, ignore_errors=True)
    print_table(results, args)


def print_table(results: dict[str, list[dict]], args) -> None:
    med = {name: {field: statistics.median(r[field] for r in rows)
                  for field in ("successes", "whole", "steady", "cpu_s", "peak_rss_mb", "wall_s")}
           for name, rows in results.items()}
    print(f"\n{args.processes} processes x {args.threads} threads, 256 px center_crop jpg q95, "
          f"median of {args.runs} runs")
    header = f"{'':<26}{'img2dataset':>14}{'altcap':>14}{'ratio':>10}"
    print(header)
    print("-" * len(header))
    lines = [("successes", "successes", "{:.0f}"),
             ("successes/s, steady", "steady", "{:.1f}"),
             ("successes/s, whole process", "whole", "{:.1f}"),
             ("wall seconds", "wall_s", "{:.1f}"),
             ("CPU seconds (process tree)", "cpu_s", "{:.1f}"),
             ("peak RSS MB (process tree)", "peak_rss_mb", "{:.0f}")]
    for label, field, fmt in lines:
        a, b = med["img2dataset"][field], med["altcap"][field]
        print(f"{label:<26}{fmt.format(a):>14}{fmt.format(b):>14}{b / a:>9.2f}x")


if __name__ == "__main__":
    main()

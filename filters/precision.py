"""Which precision runs a model fastest on this machine, measured rather than guessed from CPU
flags, among those whose output stays within a bound of fp32's. Beam-free.

Why measure: on this project's 2-core Xeon, whose flags list AVX512-BF16, benchmarks/clip.py
once scored ViT-B-32 at 14.6 image-text pairs/s in fp32 and 9.6 in bf16, so bf16 chosen from the
flags made CLIP slower; quiet, the same Xeon later gave 15.9 and 59.6. A busy machine slows
precisions unequally (here, with two other processes running: fp32 5x, bf16 9.5x, int8 6.5x), so
measure on a quiet one: the pipeline's launcher does, before workers start. Each entry records the
load average it was measured under; deleting precision.json measures again.

A calibration runs a small fixed check set once per precision to warm up, then times a few runs,
compares each precision's output with fp32's and picks the fastest within the bound. The
measurements are cached in ``filters.user_cache_dir()/precision.json`` by kind, model and machine:
a later process (a pipeline worker) finds them and measures nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from PIL import Image

import filters

REFERENCE = "fp32"
# Another precision must be this much faster than fp32 to be chosen: timing noise alone must not
# trade accuracy for nothing.
MARGIN = 1.1
# Timed runs per precision, after the warm-up: until this many seconds are spent, at most this many
# runs (ViT-B-32 in fp32 on 2 CPU cores: one timed run of the 8 check pairs, 0.5 s).
TIMED_SECONDS, MAX_TIMED_RUNS = 0.3, 5
CACHE_FILE = "precision.json"
# scikit-image's bundled photos (no download) that are CC0 or public domain
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "camera")

log = logging.getLogger("altcap")


@dataclass(frozen=True)
class Calibration:
    precision: str  # the one chosen
    rates: dict[str, float]  # check items per second, per precision tried (fp32 included; 0: it failed to run)
    agreement: dict[str, float]  # per precision, the figure the bound was checked on (nan: it failed to run)


def _cpu_name() -> str:
    """The CPU's model name and a digest of its flags (a VM may call any CPU "Xeon Processor")."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            lines = cpuinfo.read().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "cpu")
    flags = next((line for line in lines if line.startswith("flags")), "")
    return f"{name} (flags {hashlib.sha256(flags.encode()).hexdigest()[:8]})"


def machine_id(device: torch.device) -> str:
    """What the speed of each precision depends on: the processor, how many, and torch's version."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        hardware = f"{torch.cuda.get_device_name(index)} x{torch.cuda.device_count()}"
    else:
        hardware = f"{_cpu_name()} x{os.cpu_count()}"
    return f"{device.type}: {hardware}, torch {torch.__version__}"


def check_photos(size: int, n: int = 8) -> list[Image.Image]:
    """``n`` RGB photos, ``size`` px square: centre crops of scikit-image's CC0 and public-domain
    photos, tighter crops after the first eight. The same on every machine, offline."""
    from skimage import data

    found = []
    for i in range(n):
        image = Image.fromarray(getattr(data, PHOTOS[i % len(PHOTOS)])()).convert("RGB")
        side = int(min(image.size) * 0.8 ** (i // len(PHOTOS)))
        left, top = (image.width - side) // 2, (image.height - side) // 2
        found.append(image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC))
    return found


def calibrate(kind: str, model: str, device: torch.device, candidates: Sequence[str], items: int,
              prepare: Callable[[str], Callable[[], Any]], agreement: Callable[[Any, Any], float],
              acceptable: Callable[[float], bool]) -> Calibration:
    """The fastest of fp32 and ``candidates`` whose output is ``acceptable`` next to fp32's.

    ``prepare(precision)`` readies the model in that precision and returns a function that runs the
    check set (``items`` items) once and returns the output; ``agreement(fp32_output, output)`` is
    the figure ``acceptable`` judges. A precision that fails to run (RuntimeError) is not chosen.
    Measurements are cached by ``kind``, ``model`` and machine: a second call measures nothing."""
    key = " | ".join((kind, model, machine_id(device)))
    precisions = [REFERENCE, *candidates]
    found = _cached(key, precisions)
    if found is None:
        load = round(os.getloadavg()[0], 2)  # before measuring: the load the rest of the machine makes
        found = _measure(precisions, items, prepare, agreement)
        _store(key, {"rates": found[0], "agreement": found[1], "load_average": load})
        log.info("precision auto for %s: %s (items/s %s, agreement with fp32 %s, load average %s)", key,
                 _choose(candidates, *found, acceptable), {p: round(r, 1) for p, r in found[0].items()},
                 {p: round(a, 4) for p, a in found[1].items()}, load)
    return Calibration(_choose(candidates, *found, acceptable), *found)


def _choose(candidates: Sequence[str], rates: dict[str, float], agreements: dict[str, float],
            acceptable: Callable[[float], bool]) -> str:
    within = [p for p in candidates if rates[p] > 0 and acceptable(agreements[p])]
    fastest = max(within, key=rates.__getitem__, default=REFERENCE)
    return fastest if rates[fastest] >= MARGIN * rates[REFERENCE] else REFERENCE


def _measure(precisions: list[str], items: int, prepare: Callable, agreement: Callable
             ) -> tuple[dict[str, float], dict[str, float]]:
    rates, agreements, reference = {}, {}, None
    for precision in precisions:
        try:
            rates[precision], output = _run(prepare, precision, items)
        except RuntimeError as err:
            if precision == REFERENCE:
                raise
            log.warning("precision %s cannot run here: %s", precision, err)
            rates[precision], agreements[precision] = 0.0, math.nan
            continue
        reference = output if reference is None else reference
        agreements[precision] = float(agreement(reference, output))
    return rates, agreements


def _run(prepare: Callable, precision: str, items: int) -> tuple[float, Any]:
    """Items per second (best timed run) and the warm-up run's output."""
    run = prepare(precision)
    output = run()
    seconds: list[float] = []
    while not seconds or (sum(seconds) < TIMED_SECONDS and len(seconds) < MAX_TIMED_RUNS):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return items / max(min(seconds), 1e-9), output


def cache_path() -> str:
    return os.path.join(filters.user_cache_dir(), CACHE_FILE)


def _read_cache() -> dict:
    """The cache's entries; none when it is missing, torn or corrupt (then everything is measured again)."""
    try:
        with open(cache_path(), encoding="utf-8") as handle:
            found = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("%s unreadable (%s): measuring again", cache_path(), err)
        return {}
    return found if isinstance(found, dict) else {}


def _cached(key: str, precisions: list[str]) -> tuple[dict[str, float], dict[str, float]] | None:
    entry = _read_cache().get(key)
    try:
        return ({p: float(entry["rates"][p]) for p in precisions},
                {p: float(entry["agreement"][p]) for p in precisions})
    except (KeyError, TypeError, ValueError):  # not there, measured for fewer precisions, or malformed
        return None


def _store(key: str, entry: dict) -> None:
    """Add an entry to the cache, atomically: a concurrent reader sees the old file or the new one;
    of two concurrent writers the last wins, and the other's entry is measured again some day."""
    folder = os.path.dirname(cache_path())
    try:
        os.makedirs(folder, exist_ok=True)
        cache = _read_cache()
        cache[key] = entry
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".precision-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(cache, out, indent=1, sort_keys=True)
            os.replace(temporary, cache_path())
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as err:
        log.warning("cannot cache the precision measured for %s in %s: %s", key, folder, err)

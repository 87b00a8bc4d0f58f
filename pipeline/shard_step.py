"""The contract of an in-shard step, and how a shard's steps run. Beam-free.

A step takes the outcomes of the steps before it (records, and rejects that pass through) and
returns them in the same order, each either worked on or turned into a reject of its ``stage``
with one of its ``reasons``. ``pipeline.steps.SHARD_STEPS`` lists the steps in order; the shard
DoFn runs the ones the config enables, and the funnel, the shard's stats and its side files come
from that list.

- ``settings``: the config sections the step owns (name -> dataclass); the config is assembled
  from them, and ``build`` hands the step its sections.
- ``enabled(config)`` and ``preflight(config)``: whether the run uses the step, and the check it
  needs in the launcher before workers start (a model name that does not exist, a file missing);
  ``unused(config)``: the one line the run says when the step is off for want of a model.
- ``claim(config, out_dir)``: what the step records in the output folder, or checks there, before
  workers start (the tokenizers that made a folder's token files).
- ``resolved(config)``: what settings that depend on the machine stand for on it (dotted setting ->
  value, e.g. which model "auto" finds); run.json records it and a resume must find the same.
- ``batch_size`` and ``__call__(batch, prepared)``: a list of outcomes in, the same number out, in
  order; ``batch_size`` counts the samples (not rejects) in a batch. A model step may split off the
  work that feeds the model (decoding images) as ``prepare(batch)``: it runs on a helper thread one
  batch ahead, and its result comes to ``__call__`` as ``prepared``.
- ``info``: what the step reports into each shard's stats under its stage; the run's stats take
  the first shard's, with the numbers named in ``summed`` added up over all shards.
- ``side_file``: the side file (``dataset.layout``) it fills, if any.
- ``retryable(reason)``: whether a record it rejected for ``reason`` may pass another time (a
  download that timed out); ``altcap run --retry-failed`` runs those again (``pipeline.shard_retry``).

A ``RecordStep`` works on one record at a time and is thread-safe: consecutive record steps run
fused in the download thread pool, so bytes never wait for a batch to fill.
"""

from __future__ import annotations

import itertools
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Iterator

from dataset.layout import SideFile
from filters.record import Dropped, is_input_error, is_rejected, reject, sample_batches

if TYPE_CHECKING:
    from pipeline.config import Config


class ShardStep:
    stage: ClassVar[str]
    reasons: ClassVar[tuple[str, ...]]
    settings: ClassVar[dict[str, type]] = {}
    side_file: ClassVar[SideFile | None] = None
    batch_size: int = 1
    info: dict | None = None
    summed: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def enabled(cls, config: Config) -> bool:
        return True

    @classmethod
    def unused(cls, config: Config) -> str | None:
        """What the run says in one line when the step is off for want of a model or file; None: nothing."""
        return None

    @classmethod
    def preflight(cls, config: Config) -> None:
        """Checks to make in the launcher, before any worker starts; raise a user error."""

    @classmethod
    def claim(cls, config: Config, out_dir: str) -> None:
        """Record in the output folder what the step's files depend on, or refuse a folder that
        holds files made otherwise; a user error."""

    @classmethod
    def resolved(cls, config: Config) -> dict[str, str]:
        """What the step's machine-dependent settings stand for here, by dotted setting name."""
        return {}

    @classmethod
    def retryable(cls, reason: str) -> bool:
        return False

    @classmethod
    def build(cls, config: Config) -> ShardStep:
        return cls(**{name: getattr(config, name) for name in cls.settings})

    prepare: Callable[[list[dict]], object] | None = None

    def __call__(self, batch: list[dict], prepared=None) -> list[dict]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the step holds (connections, pools)."""


def internal_error(record: dict, stage: str, err: BaseException) -> dict:
    """A reject for an unexpected error: a bug must cost one record, not the job."""
    where = traceback.extract_tb(err.__traceback__)[-1]
    detail = f"{type(err).__name__}: {err} (at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})"
    return reject(record, stage, "internal_error", detail[:500])


class RecordStep(ShardStep):
    """A step on one record at a time (thread-safe). ``process`` returns the record, or a reject,
    or raises ``Dropped``; any other error of the input becomes an ``internal_error`` reject."""

    def process(self, record: dict) -> dict:
        raise NotImplementedError

    def one(self, outcome: dict) -> dict:
        if is_rejected(outcome):
            return outcome
        try:
            return self.process(outcome)
        except Dropped as dropped:
            return dropped.reject(outcome, self.stage)
        except BaseException as err:
            if not is_input_error(err):
                raise
            return internal_error(outcome, self.stage, err)

    def __call__(self, batch: list[dict], prepared=None) -> list[dict]:
        return [self.one(outcome) for outcome in batch]


def ordered_map(pool: ThreadPoolExecutor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """``map`` over a thread pool that yields in input order with at most ``window`` in flight."""
    upcoming = iter(items)
    pending = [pool.submit(fn, item) for item in itertools.islice(upcoming, window)]
    head = 0
    while head < len(pending):
        result = pending[head].result()
        pending[head] = None
        head += 1
        for item in itertools.islice(upcoming, 1):
            pending.append(pool.submit(fn, item))
        yield result


def _chained(steps: list[RecordStep]) -> Callable[[dict], dict]:
    def run(record: dict) -> dict:
        for step in steps:
            record = step.one(record)
        return record
    return run


def _batched(step: ShardStep, outcomes: Iterable[dict]) -> Iterator[dict]:
    batches = sample_batches(outcomes, step.batch_size)
    if step.prepare is None:
        for batch in batches:
            yield from step(batch)
        return
    with ThreadPoolExecutor(1, thread_name_prefix=f"altcap-{step.stage}") as ahead:
        for batch, prepared in ordered_map(ahead, lambda batch: (batch, step.prepare(batch)), batches, window=2):
            yield from step(batch, prepared)


def run_steps(steps: list[ShardStep], records: Iterable[dict], pool: ThreadPoolExecutor,
              window: int) -> Iterator[dict]:
    """The outcomes of ``records`` through ``steps``, in order: record steps in the pool with
    ``window`` records in flight, the others a batch at a time."""
    outcomes: Iterable[dict] = records
    for per_record, group in itertools.groupby(steps, key=lambda step: isinstance(step, RecordStep)):
        if per_record:
            outcomes = ordered_map(pool, _chained(list(group)), outcomes, window)
        else:
            for step in group:
                outcomes = _batched(step, outcomes)
    return iter(outcomes)

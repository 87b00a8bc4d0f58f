"""Dry runs: a job built and translated by the DataflowRunner with Beam's ``--dry_run=True``, so its
translation can be checked without a cloud account. Nothing is submitted, run or written; the
launch needs ``--project``, ``--region`` and a ``gs://`` ``--temp_location`` (their form is checked,
not the resources), and no credentials: the DataflowRunner stops before it calls Google.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions
from apache_beam.runners import create_runner

from filters.settings import ConfigError


def dry_run(options: PipelineOptions) -> bool:
    """Whether ``--dry_run=True`` was given. Only the DataflowRunner honours it; any other runner
    would run the job, so it is refused with them."""
    if not options.view_as(TestOptions).dry_run:
        return False
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    if type(create_runner(runner)).__name__ != "DataflowRunner":
        raise ConfigError(f"--dry_run=True is honoured by the DataflowRunner only: the {runner} would run the job")
    return True


def translate(pipeline):
    """The Dataflow job ``pipeline`` translates to, not submitted (``job.proto_pipeline`` is the
    Beam pipeline Dataflow would run)."""
    return pipeline.run().job

"""The Flex Template's entry point: ``altcap run`` as Dataflow's template launcher calls it.

The launcher passes each template parameter (metadata.json names them) as ``--NAME=VALUE``, with
its own Dataflow options (project, region, staging and temp locations, ...). The parameters become
``altcap run``'s options and the rest goes to Beam, as on the command line. The job is submitted and
the launcher exits without waiting for it, as Dataflow asks of a template program ("do not call
wait_until_finish": cloud.google.com/dataflow/docs/guides/templates/configuring-flex-templates), so
a template launch writes the shards, side files and rejects, not stats.json and report.html (they
need the finished job's counters).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

METADATA = Path(__file__).with_name("metadata.json")
REPEATED = {  # options given several times: the template's one value holds them, separated by ';'
    "input": re.compile(";"),
    "set": re.compile(r";(?=\s*\w+\.\w+=)"),  # a ';' inside a value (pools.accelerator=type:...;count:1) stays
}
FLAGS = {"overwrite"}  # options without a value; the template's value is true or false


def template_parameters() -> list[str]:
    return [parameter["name"] for parameter in json.loads(METADATA.read_text())["parameters"]]


def run_arguments(launcher_args: list[str], parameters: list[str]) -> list[str]:
    """``altcap run``'s command line from the launcher's: ``--NAME=VALUE`` of a template parameter
    becomes ``--NAME VALUE`` (``_`` in a name is ``-`` in the option), once per value of a repeated
    option; everything else is passed on to Beam, with the DataflowRunner unless one is named."""
    arguments, beam_args = ["run"], []
    for argument in launcher_args:
        name, _, value = argument.removeprefix("--").partition("=")
        if not argument.startswith("--") or name not in parameters:
            beam_args.append(argument)
            continue
        option = "--" + name.replace("_", "-")
        if name in FLAGS:
            arguments += [option] if value.lower() == "true" else []
        elif name in REPEATED:
            values = [each.strip() for each in REPEATED[name].split(value) if each.strip()]
            arguments += [part for each in values for part in (option, each)]
        else:
            arguments += [option, value]
    if not any(argument.split("=")[0] == "--runner" for argument in beam_args):
        beam_args.append("--runner=DataflowRunner")
    return arguments + beam_args


def main(launcher_args: list[str]) -> int:
    from pipeline.cli import _user_errors, check_run_arguments, parser, setup_logging
    from pipeline.dry_run import dry_run, translate
    from pipeline.run import pipeline_options, planned_command

    args, beam_args = parser().parse_known_args(run_arguments(launcher_args, template_parameters()))
    setup_logging(args.verbose)
    try:
        check_run_arguments(args)
        options = pipeline_options(beam_args)
        checking = dry_run(options)
        pipeline, _, _ = planned_command(args, options, claim=not checking)
        if checking:
            print(f"dry run: job {translate(pipeline).proto.name} translated; nothing was submitted or written")
        else:
            pipeline.run()  # the launcher submits the job it describes; no wait (see above)
            print(f"launched: the job writes {args.output or args.retry_failed}")
    except _user_errors() as err:
        print(f"altcap: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The Dataflow jobs of ``altcap run``, ``altcap score`` and ``altcap tokenize``, translated offline with Beam's
``--dry_run=True`` (the DataflowRunner builds the job and stops before it calls Google: no network, no
credentials), the Flex Template (deploy/dataflow) and the worker image (deploy/Dockerfile).

What is checked on the translated jobs, the pipeline protos Dataflow would receive:
- they translate; every pickled DoFn, CombineFn, side-input view and coder in them unpickles in a
  fresh Python that has only the installed packages, as an SDK worker would;
- every environment is the ``--sdk_container_image`` given, and the Beam SDK it names as its base is
  the one deploy/Dockerfile starts from; only the model steps carry the ``pools`` resource hints;
- no step holds a whole input in one worker: every GroupByKey is one of GROUPINGS, which names its
  key; the combines over one constant key (CombineGlobally) are those of GLOBAL_COMBINES, whose
  accumulators are counts, but for the scores in the CLIP cut's bin and the tally of the files
  written (counts, a histogram, a bounded number of examples); every side input is one of
  SIDE_INPUTS (counts, cuts, the tally).
What the proto cannot show: how big a key or a value is at run time (the coders are pickled Python),
nor what a user function keys by. The tables hold the reviewed answer: a new grouping, global
combine or side input fails here until it is added with the reason it stays small.
Also run: ``altcap run``, ``score`` and ``tokenize`` with ``--dry_run=True`` and the template's entry
point as the launcher calls it (nothing written); the template parameters parsed by ``altcap run``'s
own parser and by gcloud.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from apache_beam.internal import pickler
from apache_beam.internal.gcp import auth
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2 as protos

from crawl.serve import Route
from crawl.source_config import InputConfig
from filters.safety_heads import save_head
from pipeline import cli, score, tokenize
from pipeline.demo import gallery_html, warc_response
from pipeline.dry_run import translate
from pipeline.run import build, new_pipeline, pipeline_options
from tokens.random_vq import save_random_vq

from conftest import ROOT
from pipeline_helpers import PERMISSIVE, jpeg, local_config, run_local, serve
from test_clip_stage import tiny_model  # noqa: F401

IMAGE = "registry.example/altcap-worker:test"
DATAFLOW = ["--runner=DataflowRunner", "--dry_run=True", "--project=altcap-test", "--region=us-central1",
            "--temp_location=gs://altcap-test/tmp", f"--sdk_container_image={IMAGE}"]
OUT = "gs://altcap-test/out"
ITEMS = [("tsv", "gs://altcap-test/in/pairs.tsv"), ("warc", "gs://altcap-test/in/pages.warc.gz")]
TEMPLATE = ROOT / "deploy" / "dataflow"

RANDOM_KEYS = "random keys (Reshuffle): spreads the elements over workers"
TALLY = "global: the tally of the files written (counts, a size histogram, 3 reject examples per reason)"
GROUPINGS = {
    "run": {
        "Inputs/MaybeReshuffle/Reshuffle/ReshufflePerKey/GroupByKey": RANDOM_KEYS + " (beam.Create's own)",
        "SpreadInputs/ReshufflePerKey/GroupByKey": RANDOM_KEYS,
        "CrawlPages/SpreadPages/ReshufflePerKey/GroupByKey": RANDOM_KEYS,
        "Text/Verdicts/RepeatedTexts/DistinctPairs/Group/GroupByKey": "a (caption hash, URL hash) pair",
        "Text/Verdicts/RepeatedTexts/CountUses/CombinePerKey(CountCombineFn)/GroupByKey": "a caption hash: a count",
        "UrlDedup/Verdicts/GroupByUrl": "an image URL: the records that share it",
        "AssignShards/CountRecords/CombineGlobally(CountCombineFn)/CombinePerKey/GroupByKey": "global: a count",
        "AssignShards/GroupByShard": "a shard id: the records of one shard (samples_per_shard)",
        "AssignShards/CountPerHost/CombinePerKey(CountCombineFn)/GroupByKey": "an image host: a count",
        "concepts/CountConcepts/CombinePerKey/GroupByKey": "global: mentions per concept",
        "clip_top/ScoreHistogram/CombinePerKey/GroupByKey": "global: pairs per score bin",
        "clip_top/GatherAtCut/GatherAtCut/CombinePerKey/GroupByKey": "global: the scores in the cut's bin",
        "image_dedup/GroupBySha256": "an image sha256: (key, shard) of its copies",
        "image_dedup/JoinLosers/CoGroupByKeyImpl/GroupByKey": "a shard id: its sample count and losers",
        "near_dedup/GroupByBand": "a (band, band bits) of pHashes: (hash, key, shard) of ~1/64 of the samples at "
                                  "distance 10 (640 groups)",
        "near_dedup/SmallestWinner/GroupByKey": "a loser key: its winners, one per band it shares (<= 11)",
        "near_dedup/JoinLosers/CoGroupByKeyImpl/GroupByKey": "a shard id: its sample count and losers",
        "semantic_dedup/CountSamples/CombinePerKey/GroupByKey": "global: a count",
        "semantic_dedup/GatherSample/GatherSample/CombinePerKey/GroupByKey": "global: the k-means sample",
        "semantic_dedup/GroupByCluster": "a k-means cluster: (key, shard, embedding) of its samples (~sqrt(n))",
        "semantic_dedup/CountDuplicates/CombineGlobally(CountCombineFn)/CombinePerKey/GroupByKey": "global: a count",
        "semantic_dedup/JoinLosers/CoGroupByKeyImpl/GroupByKey": "a shard id: its sample count and losers",
        "WriteRejects/Write/WriteImpl/GroupByKey": "global: the names of the files written (Beam's file sink)",
        "Written/AddTallies/CombinePerKey/GroupByKey": TALLY,
    },
    "tokenize": {
        "Shards/MaybeReshuffle/Reshuffle/ReshufflePerKey/GroupByKey": RANDOM_KEYS + " (beam.Create's own)",
        "SpreadShards/ReshufflePerKey/GroupByKey": RANDOM_KEYS,
    },
}
GROUPINGS["score"] = {
    "Shards/MaybeReshuffle/Reshuffle/ReshufflePerKey/GroupByKey": RANDOM_KEYS + " (beam.Create's own)",
    "Score/SpreadShards/ReshufflePerKey/GroupByKey": RANDOM_KEYS,
    **{n: why for n, why in GROUPINGS["run"].items() if n.startswith(("clip_top/", "Written/"))},
}
GROUPINGS["run_on_pools"] = {**GROUPINGS["run"], "ModelPass/SpreadShards/ReshufflePerKey/GroupByKey": RANDOM_KEYS}
GROUPINGS["synth"] = {  # one input (beam.Create reshuffles more only); no alt-text rules, no URL dedup; best_of
    **{n: why for n, why in GROUPINGS["run"].items()
       if n.startswith(("SpreadInputs/", "CrawlPages/", "AssignShards/", "image_dedup/", "WriteRejects/",
                        "Written/"))},
    "best_of/GroupByPrompt": "a prompt id: (score, key, shard) of its N images (synth.per_prompt)",
    "best_of/JoinLosers/CoGroupByKeyImpl/GroupByKey": "a shard id: its sample count and losers",
}
GLOBAL_COMBINES = {  # the combines over one constant key (CombineGlobally): their CombineFn, and what it holds
    "AssignShards/CountRecords/CombineGlobally(CountCombineFn)/CombinePerKey": ("CountCombineFn", "a count"),
    "concepts/CountConcepts/CombinePerKey": ("SumCounts", "mentions per concept"),
    "clip_top/ScoreHistogram/CombinePerKey": ("SumCounts", "pairs per score bin"),
    "clip_top/GatherAtCut/GatherAtCut/CombinePerKey": ("ToListCombineFn", "the scores in the bin that holds the cut"),
    "Written/AddTallies/CombinePerKey": ("AddTallies", TALLY),
    "semantic_dedup/CountSamples/CombinePerKey": ("NoSideInputsCallableWrapperCombineFn", "a count (sum)"),
    "semantic_dedup/GatherSample/GatherSample/CombinePerKey": (
        "ToListCombineFn", "the k-means sample: at most dedup.semantic_sample float16 embeddings (100 MB at "
                           "100,000 x 512)"),
    "semantic_dedup/CountDuplicates/CombineGlobally(CountCombineFn)/CombinePerKey": ("CountCombineFn", "a count"),
}
SIDE_INPUTS = {
    "run": {
        "AssignShards/CountRecords/CombineGlobally(CountCombineFn)/UnKey": "the record count",
        "AssignShards/CountRecords/CombineGlobally(CountCombineFn)/InjectDefault": "the record count",
        "AssignShards/BigHosts": "the hosts with more records than a shard holds: at most one per shard",
        "Text/Verdicts/RepeatedTexts/OverLimit": "the captions used for too many images",
        "concepts/WriteConcepts": "mentions per concept",
        "concepts/CountConcepts/UnKey": "mentions per concept",
        "clip_top/ScoreHistogram/UnKey": "pairs per score bin",
        "clip_top/LocateCut": "the bin that holds the cut",
        "clip_top/GatherAtCut/GatherAtCut/UnKey": "the scores in that bin",
        "clip_top/ExactCut": "the cut score",
        "WriteRejects/Write/WriteImpl/InitializeWrite": "Beam's file sink: its settings",
        "WriteRejects/Write/WriteImpl/Extract": "Beam's file sink: the names of the files written",
        "WriteRejects/Write/WriteImpl/PreFinalize": "Beam's file sink: the names of the files written",
        "Written/AddTallies/UnKey": TALLY,
        "semantic_dedup/CountSamples/UnKey": "the samples reaching the pass",
        "semantic_dedup/CountSamples/InjectDefault": "the samples reaching the pass",
        "semantic_dedup/GatherSample/GatherSample/UnKey": "the k-means sample",
        "semantic_dedup/FitKMeans": "the centroids: clusters x embedding size",
        "semantic_dedup/CountDuplicates/CombineGlobally(CountCombineFn)/UnKey": "the duplicates found",
    },
    "tokenize": {},
}
SIDE_INPUTS["run_on_pools"] = SIDE_INPUTS["run"]
SIDE_INPUTS["synth"] = {n: why for n, why in SIDE_INPUTS["run"].items()
                        if n.startswith(("AssignShards/", "WriteRejects/", "Written/"))}
SIDE_INPUTS["score"] = {n: why for n, why in SIDE_INPUTS["run"].items() if n.startswith(("clip_top/", "Written/"))}
ACCELERATOR = "type:nvidia-l4;count:1;install-nvidia-driver"
POOLS = [f"pools.accelerator={ACCELERATOR}", "pools.min_ram=16GB"]
ON_GPUS = {"run": set(), "run_on_pools": {"ModelPass/ModelSteps"}, "score": {"Score/ModelSteps"},
           "tokenize": {"Tokenize"}, "synth": {"BuildShards"}}  # the model steps; a generator in the shard step
JOBS = list(ON_GPUS)


@pytest.fixture(scope="module")
def every_step(tmp_path_factory, tiny_model):  # noqa: F811
    """Settings for a job with every step and pass: the repeated-caption cut, an evaluation set, CLIP
    (a tiny offline model), an NSFW head, hypernymization, the tokens (a random VQ), the whole-run
    cuts and the near-duplicate and semantic dedup."""
    vq = save_random_vq(tmp_path_factory.mktemp("vq") / "vq", blocks=4, codes=64)
    safety = tmp_path_factory.mktemp("safety")
    save_head(str(safety / "nsfw.safetensors"), [(np.ones((1, 32), np.float32), np.zeros(1, np.float32))],
              kind="nsfw", embedding="tiny", l2_normalize=True)
    (safety / "eval.txt").write_text("0123456789abcdef\n")
    return ["text.max_repeats=10", "clip.enabled=true", f"clip.model={tiny_model}", "clip.device=cpu",
            "clip.precision=fp32", "clip.top_fraction=0.6", "hypernymize.enabled=true", "hypernymize.spacy_model=off",
            "hypernymize.min_concept_mentions=5", "tokens.enabled=true", f"tokens.image_model={vq}",
            "tokens.device=cpu", "tokens.precision=fp32", f"safety.nsfw_head={safety / 'nsfw.safetensors'}",
            f"dedup.against={safety / 'eval.txt'}", "dedup.near_distance=10", "dedup.semantic_eps=0.05"]


@pytest.fixture(scope="module")
def jobs(every_step):
    """The run and tokenize jobs as the DataflowRunner translates them, inputs and output on gs://: a
    run with the model steps in the shard step, one with them in a pass on a GPU pool, and tokenize
    on a GPU pool. No credentials are looked up: without any, Beam's lookup retries 4 times from 2 s,
    doubling (15-30 s, auth._Credentials), so a dry run that looked one up would be slow offline."""
    run_config, pools_config = local_config(*every_step), local_config(*every_step, *POOLS)
    on_pools = local_config(*every_step, *POOLS, "pools.model_pass=true")
    synth_config = local_config("synth.generator=altcap:/checkpoint", "synth.keep=2", *every_step[1:5], *POOLS)
    builders = {"run": lambda p: build(p, ITEMS, run_config, OUT),
                "synth": lambda p: build(p, [("prompts", "gs://altcap-test/in/prompts.jsonl")], synth_config, OUT),
                "run_on_pools": lambda p: build(p, ITEMS, on_pools, OUT),
                "score": lambda p: score.build(p, [0, 1, 2], pools_config, OUT),
                "tokenize": lambda p: tokenize.build(p, [0, 1, 2], pools_config, OUT)}
    looked_up, found = [], {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth._Credentials, "get_service_credentials", classmethod(lambda _, options: looked_up.append(1)))
        for name, add in builders.items():
            pipeline = new_pipeline(pipeline_options(DATAFLOW))
            add(pipeline)
            found[name] = translate(pipeline)
    assert looked_up == []
    return found


def transforms(job) -> dict[str, protos.PTransform]:
    return {t.unique_name: t for t in job.proto_pipeline.components.transforms.values()}


def producers(job) -> dict[str, str]:
    """PCollection id -> the name of the leaf transform that makes it."""
    return {pcoll: t.unique_name for t in transforms(job).values() if not t.subtransforms
            for pcoll in t.outputs.values()}


def pardo(transform) -> protos.ParDoPayload:
    return protos.ParDoPayload.FromString(transform.spec.payload)


def pickled_payloads(job) -> list[tuple[str, str, bytes]]:
    """(where, kind, bytes) of every pickled object a worker loads: DoFns, CombineFns, side-input
    views, coders."""
    found = []
    for name, t in transforms(job).items():
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = pardo(t)
            specs = [("DoFn", payload.do_fn)] + [("view", side.view_fn) for side in payload.side_inputs.values()]
        elif t.spec.urn == common_urns.composites.COMBINE_PER_KEY.urn:
            specs = [("CombineFn", protos.CombinePayload.FromString(t.spec.payload).combine_fn)]
        else:
            specs = []
        found += [(name, kind, spec.payload) for kind, spec in specs
                  if spec.urn in (python_urns.PICKLED_DOFN_INFO, python_urns.PICKLED_COMBINE_FN,
                                  python_urns.PICKLED_VIEWFN)]
    found += [(cid, "coder", coder.spec.payload)
              for cid, coder in job.proto_pipeline.components.coders.items()
              if coder.spec.urn == python_urns.PICKLED_CODER]
    return found


UNPICKLE = """
import pickle, sys
from apache_beam.coders.coders import deserialize_coder
from apache_beam.internal import pickler
failed = []
for where, kind, payload in pickle.loads(open(sys.argv[1], "rb").read()):
    try:
        deserialize_coder(payload) if kind == "coder" else pickler.loads(payload)
    except Exception as err:
        failed.append(f"{kind} of {where}: {type(err).__name__}: {err}")
print("\\n".join(failed))
"""


@pytest.mark.parametrize("name", JOBS)
def test_every_pickled_function_of_the_job_loads_in_a_fresh_worker_process(jobs, name, tmp_path):
    payloads = pickled_payloads(jobs[name])
    kinds = {kind for _, kind, _ in payloads}
    assert kinds == ({"DoFn", "coder"} if name == "tokenize" else {"DoFn", "coder", "CombineFn", "view"})
    (tmp_path / "payloads").write_bytes(pickle.dumps(payloads))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no PYTHONPATH: tests/ is not importable there
    done = subprocess.run([sys.executable, "-c", UNPICKLE, str(tmp_path / "payloads")], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("name", JOBS)
def test_the_workers_run_the_given_image_on_the_sdk_the_dockerfile_starts_from(jobs, name):
    environments = jobs[name].proto_pipeline.components.environments.values()
    assert {environment.urn for environment in environments} == {common_urns.environments.DOCKER.urn}
    assert {protos.DockerPayload.FromString(environment.payload).container_image for environment in environments} == {
        IMAGE}
    sdk_bases = {c.removeprefix("beam:version:sdk_base:") for environment in environments
                 for c in environment.capabilities if c.startswith("beam:version:sdk_base:")}
    assert len(sdk_bases) == 1 and f"FROM {sdk_bases.pop()}" in dockerfile_lines(ROOT / "deploy" / "Dockerfile")


@pytest.mark.parametrize("name", JOBS)
def test_no_step_holds_a_whole_input_in_one_worker(jobs, name):
    job, made_by = jobs[name], producers(jobs[name])
    steps = transforms(job)
    groupings = {n for n, t in steps.items() if t.spec.urn == common_urns.primitives.GROUP_BY_KEY.urn}
    assert groupings == set(GROUPINGS[name])
    global_combines = {}
    for step_name, t in steps.items():
        if t.spec.urn == common_urns.composites.COMBINE_PER_KEY.urn:
            keyed_by = steps[made_by[next(iter(t.inputs.values()))]]
            if keyed_by.spec.urn == common_urns.primitives.PAR_DO.urn and \
                    pardo(keyed_by).do_fn.urn == python_urns.KEY_WITH_NONE_DOFN:
                payload = protos.CombinePayload.FromString(t.spec.payload).combine_fn.payload
                global_combines[step_name] = type(pickler.loads(payload)).__name__
    expected = {n: fn for n, (fn, _) in GLOBAL_COMBINES.items() if f"{n}/GroupByKey" in GROUPINGS[name]}
    assert global_combines == expected
    side_inputs = {made_by[t.inputs[tag]] for t in steps.values() if t.spec.urn == common_urns.primitives.PAR_DO.urn
                   for tag in pardo(t).side_inputs}
    assert side_inputs == set(SIDE_INPUTS[name])


@pytest.mark.parametrize("name", JOBS)
def test_only_the_model_steps_ask_for_the_gpu_pool(jobs, name):
    environments = jobs[name].proto_pipeline.components.environments
    hinted = {n: dict(environments[t.environment_id].resource_hints) for n, t in transforms(jobs[name]).items()
              if t.environment_id and environments[t.environment_id].resource_hints}
    assert set(hinted) == ON_GPUS[name]
    assert all(hints[common_urns.resource_hints.ACCELERATOR.urn] == ACCELERATOR.encode() for hints in hinted.values())
    assert all(int(hints[common_urns.resource_hints.MIN_RAM_BYTES.urn]) == 16 * 10**9 for hints in hinted.values())


def dockerfile_lines(path: Path) -> list[str]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in path.read_text().splitlines()
                                             if not line.lstrip().startswith("#")))
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def test_the_worker_image_installs_every_package_with_the_pinned_versions():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    lines = dockerfile_lines(ROOT / "deploy" / "Dockerfile")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {line.split()[1] for line in lines if line.startswith("COPY ") and line.endswith(f" ./{line.split()[1]}")}
    assert packages <= copied
    installs = [line for line in lines if "pip install " in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    extras = {extra for line in installs for extra in re.findall(r'"\.\[(\w+)\]"', line)}
    assert extras and extras <= set(project["project"]["optional-dependencies"])
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM apache/beam_python{python}_sdk:{pins['apache-beam']}" in lines


def test_the_template_image_adds_the_launcher_of_the_workers_python_and_the_entry_point():
    lines = dockerfile_lines(TEMPLATE / "Dockerfile")
    python = f"{sys.version_info.major}{sys.version_info.minor}"
    assert f"FROM gcr.io/dataflow-templates-base/python{python}-template-launcher-base AS launcher" in lines
    assert "FROM ${WORKER_IMAGE}" in lines
    entry = next(line.split("=", 1)[1] for line in lines if line.startswith("ENV FLEX_TEMPLATE_PYTHON_PY_FILE="))
    copied = next(line.split() for line in lines if line.startswith("COPY deploy/dataflow/main.py"))
    assert copied[1:-1] == ["deploy/dataflow/main.py", "deploy/dataflow/metadata.json"]
    assert entry == copied[-1] + "main.py"


def load_entry_point():
    import importlib.util

    spec = importlib.util.spec_from_file_location("altcap_template_main", TEMPLATE / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_template_parameters_are_altcap_runs_options():
    entry = load_entry_point()
    metadata = json.loads((TEMPLATE / "metadata.json").read_text())
    parameters = {p["name"]: p for p in metadata["parameters"]}
    assert entry.template_parameters() == list(parameters)
    values = {"input": "gs://b/crawl/*.warc.gz; gs://b/lists/*.tsv", "output": "gs://b/out",
              "config": "/opt/altcap/my.yaml", "set": f"download.threads=128; pools.accelerator={ACCELERATOR};"
                                                        "image.formats=jpeg,png",
              "input_format": "warc", "overwrite": "true"}
    launcher = [f"--{name}={values[name]}" for name in parameters if name in values]
    launcher += ["--project=p", "--temp_location=gs://b/tmp"]
    args, beam_args = cli.parser().parse_known_args(entry.run_arguments(launcher, list(parameters)))
    assert beam_args == ["--project=p", "--temp_location=gs://b/tmp", "--runner=DataflowRunner"]
    assert (args.command, args.input, args.output, args.config, args.set, args.input_format, args.overwrite) == (
        "run", ["gs://b/crawl/*.warc.gz", "gs://b/lists/*.tsv"], "gs://b/out", "/opt/altcap/my.yaml",
        ["download.threads=128", f"pools.accelerator={ACCELERATOR}", "image.formats=jpeg,png"], "warc", True)
    # every option of `altcap run` but --verbose is a parameter: a renamed or new option fails here
    options = set(vars(cli.parser().parse_args(["run", "--input", "i", "--output", "o"]))) - {"command", "verbose"}
    assert options == set(parameters)
    assert all(p["isOptional"] for p in metadata["parameters"])  # input and output, or retry_failed
    args, _ = cli.parser().parse_known_args(entry.run_arguments(["--retry_failed=gs://b/out"], list(parameters)))
    assert (args.retry_failed, args.input, args.output) == ("gs://b/out", None, None)
    formats = re.fullmatch(r"\^\((.*)\)\$", parameters["input_format"]["regexes"][0]).group(1).split("|")
    assert set(formats) == InputConfig.CHOICES["format"]
    given = entry.run_arguments(["--overwrite=false", "--runner=DataflowRunner"], list(parameters))
    assert given == ["run", "--runner=DataflowRunner"]


def test_gcloud_builds_the_template_spec_from_the_metadata(tmp_path):
    gcloud = subprocess.run(["which", "gcloud"], capture_output=True, text=True).stdout.strip()
    if not gcloud:
        pytest.skip("gcloud is not installed")
    done = subprocess.run([gcloud, "dataflow", "flex-template", "build", "gs://b/altcap.json", "--image",
                           "registry.example/altcap-template:test", "--sdk-language", "PYTHON", "--metadata-file",
                           str(TEMPLATE / "metadata.json"), "--print-only"],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                                            "CLOUDSDK_CONFIG": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    spec = json.loads(done.stdout.split("|-", 1)[-1])
    metadata = json.loads((TEMPLATE / "metadata.json").read_text())
    assert spec["metadata"]["parameters"] == metadata["parameters"]
    assert spec["sdkInfo"] == {"language": "PYTHON"}


@pytest.fixture
def small_inputs(tmp_path):
    (tmp_path / "pairs.tsv").write_text("a cat on a sofa\thttp://img.altcap.test/a.jpg\n")
    page = gallery_html("Gallery", [("http://img.altcap.test/b.jpg", "a rocket on a launch pad")])
    (tmp_path / "pages.warc.gz").write_bytes(warc_response("http://gallery.altcap.test/", page))
    return [str(tmp_path / "pairs.tsv"), str(tmp_path / "pages.warc.gz")]


def test_altcap_run_dry_run_translates_and_writes_nothing(tmp_path, small_inputs, every_step, capsys):
    out = tmp_path / "out"
    command = ["run", "--input", small_inputs[0], "--input", small_inputs[1], "--output", str(out),
               *(part for setting in every_step for part in ("--set", setting))]
    assert cli.main([*command, *DATAFLOW]) == 0
    assert re.match(r"dry run: the DataflowRunner translated job beamapp-\S+ \(\d+ transforms\); nothing was "
                    r"submitted or written", capsys.readouterr().out)
    assert not out.exists()
    # the DirectRunner would run the job: refused; so is a project id Dataflow would refuse
    assert cli.main([*command, "--dry_run=True"]) == 2
    assert "honoured by the DataflowRunner only" in capsys.readouterr().err
    assert cli.main([*command, *DATAFLOW, "--project=Not A Project"]) == 2
    assert "Invalid Project ID (Not A Project)" in capsys.readouterr().err
    assert not out.exists()


def test_the_template_entry_point_launches_a_dry_run_as_the_launcher_calls_it(tmp_path, small_inputs, capsys):
    out = tmp_path / "out"
    launcher = [f"--input={';'.join(small_inputs)}", f"--output={out}", "--set=text.min_words=1;download.threads=4",
                "--overwrite=false", *DATAFLOW[1:]]  # the runner comes from the entry point
    assert load_entry_point().main(launcher) == 0
    assert capsys.readouterr().out.startswith("dry run: job beamapp-")
    assert not out.exists()
    assert load_entry_point().main([f"--input={tmp_path}/missing.tsv", f"--output={out}", *DATAFLOW[1:]]) == 2
    assert "missing.tsv" in capsys.readouterr().err


def test_altcap_tokenize_score_and_retry_dry_runs_translate_and_write_nothing(tmp_path, every_step, capsys):
    (tmp_path / "pairs.tsv").write_text("a red square\thttp://photos.altcap.test/a.jpg\n")
    with serve({"/a.jpg": Route(jpeg(64, 64))}) as site:
        run_local([tmp_path / "pairs.tsv"], tmp_path / "out", *PERMISSIVE, site.connect_to)
    before = sorted((tmp_path / "out").rglob("*"))
    tokens = [setting for setting in every_step if setting.startswith("tokens.")]
    command = ["tokenize", str(tmp_path / "out"), *(part for setting in tokens for part in ("--set", setting))]
    assert cli.main([*command, *DATAFLOW]) == 0
    assert capsys.readouterr().out.startswith("dry run: the DataflowRunner translated job beamapp-")
    assert sorted((tmp_path / "out").rglob("*")) == before  # no tokenizers.json, no token file
    clip = [setting for setting in every_step if setting.startswith("clip.")]
    assert cli.main(["score", str(tmp_path / "out"), *(part for s in clip for part in ("--set", s)), *DATAFLOW]) == 0
    assert capsys.readouterr().out.startswith("dry run: the DataflowRunner translated job beamapp-")
    assert sorted((tmp_path / "out").rglob("*")) == before  # no score claim, no embeddings
    assert cli.main(["run", "--retry-failed", str(tmp_path / "out"), *DATAFLOW]) == 0
    assert capsys.readouterr().out.startswith("dry run: the DataflowRunner translated job beamapp-")
    assert sorted((tmp_path / "out").rglob("*")) == before

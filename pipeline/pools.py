"""Worker pools (``pools``): downloading is network- and CPU-bound, CLIP and the VQ model are
GPU-bound, and a GPU worker that downloads leaves its GPU idle. The transforms that run the model
steps carry Beam resource hints (an accelerator, a minimum of RAM), so a runner that fits workers to
steps (Dataflow's right fitting) runs them on a GPU pool and the rest on CPU workers; runners
without such pools ignore the hints. With ``model_pass`` the model steps of ``altcap run`` run as a
pass of their own over the written shards (``pipeline.model_pass``), fused apart from the downloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.settings import ConfigError, require
from pipeline.clip_step import ClipStep
from pipeline.hypernymize_step import HypernymizeStep
from pipeline.safety_step import SafetyStep
from pipeline.tokens_step import TokensStep

# the in-shard steps a GPU pool runs
MODEL_STAGES = (ClipStep.stage, SafetyStep.stage, HypernymizeStep.stage, TokensStep.stage)


@dataclass
class PoolsConfig:
    # Resource hints on the transforms that run the models: `altcap score`, `altcap tokenize`, and in
    # `altcap run` the model pass (or the shard step, when the models run inside it).
    accelerator: str | None = None  # Dataflow's form: "type:nvidia-l4;count:1;install-nvidia-driver"
    min_ram: str | None = None  # e.g. "16GB"
    # `altcap run`: the model steps as a second pass over the written shards, after a Reshuffle of
    # shard ids, so the runner fuses (and can place) them apart from the downloads.
    model_pass: bool = False

    def check(self) -> None:
        if self.accelerator is not None:
            require("type:" in self.accelerator and "count:" in self.accelerator,
                    f"pools.accelerator {self.accelerator!r}: expected type:GPU_TYPE;count:N[;install-nvidia-driver]")
        if self.min_ram is not None:
            from apache_beam.transforms.resources import MinRamHint

            try:
                MinRamHint.parse(self.min_ram)
            except ValueError:
                raise ConfigError(f"pools.min_ram {self.min_ram!r}: expected an amount, e.g. 16GB or 512MiB") from None


def model_hints(config) -> dict[str, str]:
    """The resource hints of the transforms that run the models (empty when none is set)."""
    pools = config.pools
    return {name: value for name, value in (("accelerator", pools.accelerator), ("min_ram", pools.min_ram)) if value}


def on_model_pool(transform, config):
    """``transform`` with the model pool's resource hints."""
    hints = model_hints(config)
    return transform.with_resource_hints(**hints) if hints else transform

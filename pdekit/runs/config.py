"""A run's configuration: the dataclasses of ``config.toml`` (data, model, trainer, rollout, online), read from TOML or YAML."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pdekit.online.stream import OnlineConfig
from pdekit.rollout.objectives import RolloutTraining
from pdekit.training.trainer import TrainerConfig

CONFIG = "config.toml"


@dataclass(frozen=True)
class DataConfig:
    """Which windows of which store: ``input_steps`` states in, the next ``target_steps`` out.

    The last ``validation_fraction`` of the completed members (by index; members are independent
    draws) are held out for validation and for ``evaluate``.
    """

    store: str = ""
    input_steps: int = 1
    target_steps: int = 1
    stride: int = 1
    validation_fraction: float = 0.1
    batch_size: int = 16
    normalize: bool = True
    members_per_read: int = 4
    workers: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """The model's name in ``pdekit.models.MODELS`` and the settings that override its config's defaults."""

    name: str = "fno"
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs; ``config.toml`` in the run directory holds it resolved."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    trainer: TrainerConfig = TrainerConfig()
    rollout: RolloutTraining = RolloutTraining()
    online: OnlineConfig = OnlineConfig()
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict, source: str = "configuration") -> ExperimentConfig:
        """Returns the config described by ``values`` (sections ``data``, ``model``, ``trainer``, ``rollout``, ``online``); unknown keys are errors."""
        sections = {"data": DataConfig, "model": ModelConfig, "trainer": TrainerConfig, "rollout": RolloutTraining, "online": OnlineConfig}
        unknown = set(values) - set(sections) - {"seed"}
        if unknown:
            raise ValueError(f"{source}: unknown section or key {sorted(unknown)}; expected {sorted(sections)} and seed")
        built = {}
        for name, section_cls in sections.items():
            given = values.get(name, {})
            known = {f.name for f in dataclasses.fields(section_cls)}
            if set(given) - known:
                raise ValueError(f"{source}: [{name}] has no key {sorted(set(given) - known)}; its keys are {sorted(known)}")
            built[name] = section_cls(**given)
        return cls(**built, seed=int(values.get("seed", 0)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_overrides(self, **sections: dict) -> ExperimentConfig:
        """Returns a copy with ``sections={"trainer": {"epochs": 5}, ...}`` replacing single keys (``None`` values are ignored)."""
        values = self.to_dict()
        for name, updates in sections.items():
            if name == "seed":
                values["seed"] = updates if updates is not None else values["seed"]
                continue
            values[name].update({k: v for k, v in updates.items() if v is not None})
        return ExperimentConfig.from_dict(values)


def load_config(path: str | Path) -> ExperimentConfig:
    """Reads an ``ExperimentConfig`` from a TOML (``.toml``) or YAML (``.yaml``, ``.yml``) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no configuration file {path}")
    if path.suffix == ".toml":
        values = tomllib.loads(path.read_text())
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(path.read_text()) or {}
    else:
        raise ValueError(f"{path}: configuration files are .toml, .yaml or .yml")
    return ExperimentConfig.from_dict(values, source=str(path))


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Writes ``config`` as TOML, the form ``load_config`` and ``pdekit train --config`` read back."""
    import tomli_w

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(tomli_w.dumps(config.to_dict()))



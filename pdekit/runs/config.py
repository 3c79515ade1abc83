"""A run's configuration: the dataclasses of ``config.toml`` (data, model, trainer, rollout, online), read from TOML or YAML."""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pdekit.atomic import write_atomically
from pdekit.models.registry import model_config, typed_values
from pdekit.online.stream import OnlineConfig
from pdekit.rollout.correction import CorrectionTraining
from pdekit.rollout.objectives import RolloutTraining
from pdekit.training.trainer import TrainerConfig

CONFIG = "config.toml"
"""The name of a run directory's resolved configuration file."""


@dataclass(frozen=True)
class DataConfig:
    """Which windows of which store: ``input_steps`` states in, the next ``target_steps`` out.

    The last ``validation_fraction`` of the completed members (by index; members are independent
    draws) are held out for validation and for ``evaluate``.

    Args:
        store: the Zarr ensemble: a local path or an fsspec URL; None: not set (``pdekit online`` sets it to its validation
            store; ``train`` refuses to run without one).
        input_steps: the states a window gives the model, at least 1.
        target_steps: the states after them it is trained to predict, at least 1.
        stride: the steps between the starts of consecutive windows, at least 1.
        validation_fraction: the share of the completed members held out, in (0, 1).
        batch_size: windows per batch, at least 1.
        normalize: normalise the fields by the training members' statistics.
        members_per_read: the members a ``ChunkLocalSampler`` block reads at once, at least 1.
        workers: DataLoader worker processes, at least 0 (0: in the training process).

    A ``config.toml`` of an earlier pdekit version holds ``store = ""`` for "not set"; it reads as None.

    Raises:
        ValueError: a setting is out of its range, naming it (``data.KEY``).
    """

    store: str | None = None
    input_steps: int = 1
    target_steps: int = 1
    stride: int = 1
    validation_fraction: float = 0.1
    batch_size: int = 16
    normalize: bool = True
    members_per_read: int = 4
    workers: int = 0

    def __post_init__(self) -> None:
        if self.store == "":  # config.toml files of earlier pdekit versions wrote "" for "not set"
            object.__setattr__(self, "store", None)
        for name in ("input_steps", "target_steps", "stride", "batch_size", "members_per_read"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1; got {getattr(self, name)}")
        if self.workers < 0:
            raise ValueError(f"data.workers must be >= 0; got {self.workers}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"data.validation_fraction must be in (0, 1); got {self.validation_fraction}")


@dataclass(frozen=True)
class ModelConfig:
    """The model's name in ``pdekit.models.MODELS`` and the settings that override its config's defaults.

    The settings are checked against the model's config dataclass here, so that a wrong one fails
    before any data is read (``model.settings.KEY`` is named), and again when the model is built.

    Args:
        name: a model of ``pdekit.models.MODELS``.
        settings: its settings, over its config's defaults.

    Raises:
        ValueError: the model is unknown, or a setting is unknown or of the wrong type (naming it).
    """

    name: str = "fno"
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        model_config(self.name, self.settings)


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "trainer": TrainerConfig,
    "rollout": RolloutTraining,
    "online": OnlineConfig,
    "correction": CorrectionTraining,
}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs; ``config.toml`` in the run directory holds it resolved.

    Args:
        data: the store and its windows.
        model: the operator and its settings.
        trainer: the optimisation.
        rollout: the rollout training (mode, unroll, pushforward, noise).
        online: the online stream (``pdekit online``).
        correction: the learned correction of a coarse solver (``rollout.mode = "correction"``).
        seed: the run's seed (weights, sampling order).
    """

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    trainer: TrainerConfig = TrainerConfig()
    rollout: RolloutTraining = RolloutTraining()
    online: OnlineConfig = OnlineConfig()
    correction: CorrectionTraining = CorrectionTraining()
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict, source: str | None = None) -> ExperimentConfig:
        """Returns the config described by ``values`` (sections ``data``, ``model``, ``trainer``, ``rollout``, ``online``, and ``seed``).

        This is the one place where a configuration's values are checked, whatever they came from
        (a file, ``--set``, a command's options): unknown sections and keys, and every value against
        its field's annotation (``typed_values``: a bool is not a number, ``"3"`` is not an integer),
        then against the section's own rules (its ``__post_init__``). Errors are one-line
        ValueErrors naming ``section.key`` and the value, prefixed with ``source`` (a file name) when given.

        Args:
            values: ``{section: {key: value}, "seed": int}``, as ``to_dict`` gives and a file holds.
            source: what the errors name the values' origin (a file name); None for nothing.

        Returns:
            The checked config.

        Raises:
            ValueError: a section, key or value is unknown, of the wrong type or out of range.
        """
        prefix = f"{source}: " if source else ""
        if not isinstance(values, dict):
            raise ValueError(f"{prefix}a configuration is a table of sections {sorted(SECTIONS)} and seed; got {values!r}")
        unknown = set(values) - set(SECTIONS) - {"seed"}
        if unknown:
            raise ValueError(f"{prefix}unknown section or key {sorted(unknown)}; expected {sorted(SECTIONS)} and seed")
        built = {}
        try:
            for name, section_cls in SECTIONS.items():
                given = values.get(name, {})
                if not isinstance(given, dict):
                    raise ValueError(f"[{name}] must be a table of keys; got {given!r}")
                known = {f.name for f in dataclasses.fields(section_cls)}
                if set(given) - known:
                    raise ValueError(f"[{name}] has no key {sorted(set(given) - known)}; its keys are {sorted(known)}")
                built[name] = section_cls(**typed_values(section_cls, given, name))
            seed = typed_values(cls, {"seed": values.get("seed", 0)}, "")["seed"]
        except ValueError as error:
            raise ValueError(f"{prefix}{error}") from None
        return cls(**built, seed=seed)

    def to_dict(self) -> dict:
        """Returns the config as plain values, ``{section: {key: value}, "seed": int}``: what ``from_dict`` reads back."""
        return dataclasses.asdict(self)

    def with_overrides(self, **sections: dict) -> ExperimentConfig:
        """Returns a copy with ``sections={"trainer": {"epochs": 5}, ...}`` replacing single keys (``None`` values are ignored).

        Args:
            **sections: per section, the keys to replace (``seed=`` an integer); checked as ``from_dict`` checks.

        Returns:
            The new config.

        Raises:
            ValueError: a section or key is unknown, or a value is of the wrong type or out of range.
        """
        values = self.to_dict()
        for name, updates in sections.items():
            if name == "seed":
                values["seed"] = updates if updates is not None else values["seed"]
            elif name in SECTIONS:
                values[name].update({k: v for k, v in updates.items() if v is not None})
            else:
                raise ValueError(f"unknown section {name!r}; expected one of {sorted(SECTIONS)} (or seed)")
        return ExperimentConfig.from_dict(values)


def _yaml_loader():
    """Returns a safe YAML loader that reads ``1e-3`` as a number, as YAML 1.2 and TOML do (PyYAML's YAML 1.1 reads it as a string)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    exponent = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", exponent, list("-+0123456789"))
    return Loader


def _one_line_yaml_error(error) -> str:
    problem = getattr(error, "problem", None)
    mark = getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(error).split())


def load_config(path: str | Path) -> ExperimentConfig:
    """Reads an ``ExperimentConfig`` from a TOML (``.toml``) or YAML (``.yaml``, ``.yml``) file.

    A file that does not parse, or holds values of the wrong type, is a one-line ValueError naming
    the file (and the line, or the key).

    Args:
        path: a ``.toml``, ``.yaml`` or ``.yml`` file.

    Returns:
        The checked config.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: it has another suffix, does not parse, or holds a bad section, key or value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no configuration file {path}")
    if path.suffix == ".toml":
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path}: not valid TOML: {error}") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            values = yaml.load(path.read_text(), Loader=_yaml_loader())
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {_one_line_yaml_error(error)}") from None
        values = {} if values is None else values
    else:
        raise ValueError(f"{path}: configuration files are .toml, .yaml or .yml")
    return ExperimentConfig.from_dict(values, source=str(path))


def _without_none(values: dict) -> dict:
    """Returns ``values`` with its None entries left out, in nested tables too: TOML has no null."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in values.items() if v is not None}


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Writes ``config`` as TOML, the form ``load_config`` and ``pdekit train --config`` read back, atomically.

    A setting that is None ("the default", which every None-able setting defaults to) is left out
    of the file, since TOML has no null; reading the file back gives it its default, None, again.

    Args:
        config: the config to write.
        path: the file; replaced whole, never left half-written.
    """
    import tomli_w

    write_atomically(path, tomli_w.dumps(_without_none(config.to_dict())))

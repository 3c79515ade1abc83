"""Building operator models by name from a config, and rebuilding them from a saved spec."""

from __future__ import annotations

from dataclasses import fields

from torch import nn

from pdekit.models.factformer import FactFormer, FactFormerConfig
from pdekit.models.ffno import FactorizedFNO, FFNOConfig
from pdekit.models.fno import FNOConfig, FourierNeuralOperator
from pdekit.models.galerkin import GalerkinConfig, GalerkinTransformer

MODELS = {
    "fno": (FourierNeuralOperator, FNOConfig, {}),
    "tfno": (FourierNeuralOperator, FNOConfig, {"factorization": "tucker"}),
    "ffno": (FactorizedFNO, FFNOConfig, {}),
    "galerkin": (GalerkinTransformer, GalerkinConfig, {}),
    "factformer": (FactFormer, FactFormerConfig, {}),
}


def build_model(name: str, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, **settings) -> nn.Module:
    """Returns the operator model ``name`` (one of ``MODELS``), with ``settings`` overriding its config's defaults.

    Every model is called as ``model(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.
    The model's ``spec`` attribute (plain types) is what ``model_from_spec`` needs to rebuild it,
    and what the Trainer saves beside the weights.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    cls, config_cls, defaults = MODELS[name]
    known = {f.name for f in fields(config_cls)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"model {name!r} has no setting {sorted(unknown)}; its settings are {sorted(known)}")
    model = cls(in_channels, out_channels, dim=dim, n_params=n_params, config=config_cls(**{**defaults, **settings}))
    model.spec = {"name": name, "in_channels": in_channels, "out_channels": out_channels, "dim": dim, "n_params": n_params, "settings": dict(settings)}
    return model


def model_from_spec(spec: dict) -> nn.Module:
    """Returns a freshly initialised model built from ``spec`` (a model's ``spec`` attribute)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a model spec is a dict with name, in_channels, out_channels, dim, n_params and settings; got {spec!r}")
    return build_model(spec["name"], spec["in_channels"], spec["out_channels"], spec["dim"], spec["n_params"], **spec["settings"])

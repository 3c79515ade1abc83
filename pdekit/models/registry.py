"""Building operator models by name from a config, and rebuilding them from a saved spec.

``typed_values`` checks settings against a config dataclass's annotations; the model settings and
every section of a run's configuration (``pdekit.runs.config``) are checked by it.
"""

from __future__ import annotations

import numbers
import types
import typing
from dataclasses import fields
from typing import Any

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
"""The models by name: ``(model class, config dataclass, settings over the config's defaults)``."""

_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a table of keys and values"}


def _typed(annotation, value, key: str):
    """Returns ``value`` checked against ``annotation`` (ints become floats where a float is expected); ValueError naming ``key``
    otherwise."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        others = [a for a in arguments if a is not type(None)]
        for candidate in others:
            try:
                return _typed(candidate, value, key)
            except ValueError:
                pass
        expected = " or ".join(_EXPECTED.get(a, getattr(a, "__name__", str(a))) for a in others)
        raise ValueError(f"{key} must be {expected}; got {value!r} ({type(value).__name__})")
    if origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list; got {value!r} ({type(value).__name__})")
        return tuple(_typed(arguments[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    # A bool is an int to Python but never a number here: gradient_clip = true is a mistake, not 1.0.
    if annotation is bool:
        valid = isinstance(value, bool)
    elif annotation is int:
        valid = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif annotation is float:
        valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
        value = float(value) if valid else value
    elif annotation in (str, dict):
        valid = isinstance(value, annotation)
    else:
        return value  # annotations other than these are not checked
    if not valid:
        raise ValueError(f"{key} must be {_EXPECTED[annotation]}; got {value!r} ({type(value).__name__})")
    return value


def typed_values(config_cls: type, values: dict, where: str) -> dict:
    """Returns ``values`` (keyword arguments of the dataclass ``config_cls``) checked against its field annotations.

    ``int``, ``float`` (ints accepted, and made floats), ``bool``, ``str``, ``dict``, ``X | None`` and
    ``tuple[X, ...]`` (from a list) are checked; a bool is refused where a number is expected. Raises
    ValueError naming ``where.KEY`` (``KEY`` when ``where`` is empty), the value and the type expected; unknown keys are left to the caller.
    """
    hints = typing.get_type_hints(config_cls)
    return {key: _typed(hints[key], value, f"{where}.{key}" if where else key) if key in hints else value for key, value in values.items()}


def model_config(name: str, settings: dict, where: str = "model"):
    """Returns the config dataclass of model ``name`` with ``settings`` over its defaults.

    Raises a one-line ValueError naming ``where.name`` for an unknown model, and ``where.settings.KEY``
    for a setting the model does not have or a value of the wrong type (or one its config refuses).
    """
    if name not in MODELS:
        raise ValueError(f"{where}.name: unknown model {name!r}; expected one of {sorted(MODELS)}")
    _, config_cls, defaults = MODELS[name]
    if not isinstance(settings, dict):
        raise ValueError(f"{where}.settings must be a table of the model's settings; got {settings!r}")
    known = {f.name for f in fields(config_cls)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"model {name!r} has no setting {sorted(unknown)} ({where}.settings); its settings are {sorted(known)}")
    return config_cls(**{**defaults, **typed_values(config_cls, settings, f"{where}.settings")})


def build_model(name: str, in_channels: int, out_channels: int, dim: int = 2, n_params: int = 0, **settings: Any) -> nn.Module:
    """Returns the operator model ``name`` (one of ``MODELS``), with ``settings`` overriding its config's defaults.

    Every model is called as ``model(x [B, in_channels, *S], params [B, n_params] | None) -> [B, out_channels, *S]``.
    The model's ``spec`` attribute (plain types) is what ``model_from_spec`` needs to rebuild it,
    and what the Trainer saves beside the weights. Settings are checked as ``model_config`` does.

    Args:
        name: a name in ``MODELS``: ``"fno"``, ``"tfno"``, ``"ffno"``, ``"galerkin"``, ``"factformer"``.
        in_channels: the input's channels.
        out_channels: the output's channels.
        dim: the space axes.
        n_params: the PDE parameters per member the model is conditioned on (0: none).
        **settings: fields of the model's config dataclass (``FNOConfig``, ...), over its defaults.

    Returns:
        The model, with its ``spec``.

    Raises:
        ValueError: for an unknown model, an unknown setting or a value of the wrong type, naming it.
    """
    config = model_config(name, settings)
    model = MODELS[name][0](in_channels, out_channels, dim=dim, n_params=n_params, config=config)
    model.spec = {
        "name": name,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "dim": dim,
        "n_params": n_params,
        "settings": dict(settings),
    }
    return model


def model_from_spec(spec: dict) -> nn.Module:
    """Returns a freshly initialised model built from ``spec`` (a model's ``spec`` attribute).

    Args:
        spec: ``{"name", "in_channels", "out_channels", "dim", "n_params", "settings"}`` as ``build_model`` records it.

    Returns:
        The model (its weights are to be loaded from a checkpoint).

    Raises:
        ValueError: if ``spec`` is not such a dict, or ``build_model`` refuses it.
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a model spec is a dict with name, in_channels, out_channels, dim, n_params and settings; got {spec!r}")
    return build_model(spec["name"], spec["in_channels"], spec["out_channels"], spec["dim"], spec["n_params"], **spec["settings"])

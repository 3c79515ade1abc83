"""Neural operators behind one interface: ``model(x [B, C_in, *S], params=None) -> [B, C_out, *S]``."""

from pdekit.models.factformer import FactFormer, FactFormerConfig
from pdekit.models.ffno import FactorizedFNO, FFNOConfig
from pdekit.models.fno import FNOConfig, FourierNeuralOperator
from pdekit.models.galerkin import GalerkinConfig, GalerkinTransformer
from pdekit.models.registry import MODELS, build_model, model_from_spec

__all__ = [
    "FFNOConfig",
    "FNOConfig",
    "FactFormer",
    "FactFormerConfig",
    "FactorizedFNO",
    "FourierNeuralOperator",
    "GalerkinConfig",
    "GalerkinTransformer",
    "MODELS",
    "build_model",
    "model_from_spec",
]

"""MLP behaviour-cloning baseline (policy name ``"mlp"``)."""

from embodia.policies.mlp.configuration_mlp import MLPConfig
from embodia.policies.mlp.modeling_mlp import MLPPolicy

__all__ = ["MLPConfig", "MLPPolicy"]

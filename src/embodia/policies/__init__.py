"""Policies: action-chunk predictors with a common contract (see ``embodia.policies.base``).

Build one by name with :func:`make_policy`: ``"mlp"``, ``"ebt"``, ``"ebt-dsm"``, ``"diffusion"``; policy modules are
imported lazily. :class:`TransformerBackbone` is the network EBT and Diffusion Policy share.
"""

from embodia.policies.base import CHECKPOINT_VERSION, CheckpointError, Policy, PolicyConfig
from embodia.policies.factory import available_policies, get_policy_class, make_policy
from embodia.policies.normalizer import MinMaxNormalizer

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "MinMaxNormalizer",
    "Policy",
    "PolicyConfig",
    "available_policies",
    "get_policy_class",
    "make_policy",
]

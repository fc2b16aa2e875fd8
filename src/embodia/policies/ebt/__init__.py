"""EBT-Policy (``"ebt"``) and its denoising-score-matching variant (``"ebt-dsm"``).

An energy-based transformer whose action chunks are found by gradient descent on the energy.
"""

from embodia.policies.ebt.configuration_ebt import EBTConfig, EBTDSMConfig
from embodia.policies.ebt.modeling_ebt import EBTDSMPolicy, EBTPolicy

__all__ = ["EBTConfig", "EBTDSMConfig", "EBTDSMPolicy", "EBTPolicy"]

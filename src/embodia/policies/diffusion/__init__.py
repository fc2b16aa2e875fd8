"""Diffusion Policy (``"diffusion"``): a DDPM over action chunks on the shared transformer backbone."""

from embodia.policies.diffusion.configuration_diffusion import DiffusionConfig
from embodia.policies.diffusion.modeling_diffusion import DiffusionPolicy
from embodia.policies.diffusion.scheduler import DDPMScheduler

__all__ = ["DDPMScheduler", "DiffusionConfig", "DiffusionPolicy"]

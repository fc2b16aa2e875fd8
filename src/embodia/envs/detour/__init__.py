"""Detour reaching: ``embodia/DetourReach-v0``, a point mass that must go around a disk obstacle (two modes)."""

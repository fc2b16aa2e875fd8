"""Rollouts: run controllers in environments and record episodes (a Ray pool with the same API comes later)."""

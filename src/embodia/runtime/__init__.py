"""Rollouts: run controllers in environments and record episodes, in process or on a Ray actor pool."""

"""Experiments: rows trained and evaluated side by side on the same held-out seeds.

- :mod:`~embodia.experiments.variants`: a :class:`Variant` is one row (a policy to train or a controller that needs
  none); rows train in parallel as Ray tasks and are evaluated on the Ray rollout pool; paired differences.
- :mod:`~embodia.experiments.demo`: ``embodia demo``, the main job, built on the zoo and those rows.
- :mod:`~embodia.experiments.report`: the demo's report (md, json, html).
"""

"""The checkpoint zoo: policies and agents trained by this project's own code, shipped with their recipes.

- ``zoo:NAME`` works wherever a checkpoint path is taken (``Policy.load("zoo:memory-agent-ebt")``,
  ``embodia eval --checkpoint zoo:memory-agent-ebt``); :mod:`embodia.zoo_store` finds and verifies the file.
- :mod:`embodia.zoo.recipes`: the exact commands that made every entry; ``embodia zoo train NAME`` reruns them
  (:mod:`embodia.zoo.train`).
- ``embodia zoo list``: every entry with the figures recorded for it (``records/NAME.json``).
"""

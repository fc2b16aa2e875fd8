"""Environments that are not ours, given embodia's contract.

The adapter gives any Gymnasium env with a Box action space action checks, ``mj_state`` and episode metrics;
``pusher_expert`` is the scripted expert of Gymnasium's ``Pusher-v5``.
"""

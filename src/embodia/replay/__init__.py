"""Replays: re-render recorded episodes from their stored MuJoCo states (no physics runs)."""

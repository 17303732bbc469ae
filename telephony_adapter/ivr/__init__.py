"""The IVR: flows as data run by a pure engine (engine.py), its actions and its ports."""

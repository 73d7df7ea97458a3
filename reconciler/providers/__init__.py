"""The Provider protocol (base.py) each system's provider follows, between the engine and the systems."""

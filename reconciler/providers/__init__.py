"""The Provider protocol (base.py) each system's provider follows, between the service and the systems."""

"""Fixtures of the controller's tests."""

from tests.controller.slack_helpers import rig

__all__ = ["rig"]

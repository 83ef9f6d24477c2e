"""Spotfire Server emulator: a development and test tool, not a Spotfire Server."""

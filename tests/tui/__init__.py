"""Headless tests of the simulator's Textual UI (``sim.tui.app``), driven by Pilot against a fake world."""

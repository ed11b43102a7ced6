"""Headless tests of the simulator's Textual UI (``sim.tui``), driven by Pilot against a fake world."""

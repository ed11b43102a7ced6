"""The Textual UI of the simulated terminal."""

"""The simulated world and the headless scenario runner with its transcripts."""

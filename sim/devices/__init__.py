"""Simulated devices on pseudo-terminals: card reader firmware with its cards, PIN pad, QR scanner, printer."""

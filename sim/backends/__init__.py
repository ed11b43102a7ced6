"""Simulated back ends on loopback: acquirer host (with the card issuer), carrier platform, wallet platform."""

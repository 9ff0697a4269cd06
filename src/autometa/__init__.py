"""Autometa: self-hostable on-chain workflow automation for EVM chains."""

__version__ = "0.1.0"

"""Workflows, triggers and actions: typed models, their ABI encoding and EIP-712 typed data.
Pure: no I/O."""

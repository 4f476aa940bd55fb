"""Kanaria handlers layer."""

"""Kanaria dal layer."""

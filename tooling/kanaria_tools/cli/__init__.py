"""Kanaria cli layer."""

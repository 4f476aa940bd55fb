"""Kanaria domain layer."""

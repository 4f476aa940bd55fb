"""Kanaria stats layer."""

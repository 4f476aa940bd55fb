"""Business logic: orchestrates the pure domain and the data-access layer."""

"""What a person reads: the figures (matplotlib), the check that no label overlaps or is clipped, and the
self-contained HTML page (Jinja2 + markdown-it-py, images embedded as data URIs). Tooling only: never in the
Lambda asset."""

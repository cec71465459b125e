"""tinykube package."""

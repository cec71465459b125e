"""controller_manager package."""

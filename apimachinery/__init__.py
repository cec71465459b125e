"""apimachinery package."""

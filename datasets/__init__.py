"""plyground.datasets."""

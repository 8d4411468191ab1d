"""plyground.cli."""

"""plyground.arena."""

"""plyground.agents."""

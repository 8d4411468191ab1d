"""plyground.search.native."""

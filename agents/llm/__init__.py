"""LLM backends, game prompts, move parsing and the three LLM roles (proposer, opponent, value)."""

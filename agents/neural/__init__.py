"""Players that play from a policy-value network: ``neural`` (the network's policy, one call a move)
and ``neural-mcts`` (PUCT guided by the network's prior and value).  The network itself
(``network.py``) and its checkpoint format (``checkpoint.py``) live here because they play; the
training loops and data live in ``plyground.datasets``."""

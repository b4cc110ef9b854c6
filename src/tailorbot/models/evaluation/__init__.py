"""Evaluating decisions: A/B statistics on clustered data (``stats``) and off-policy
evaluation of response-variant policies from logged decisions (``ope``)."""

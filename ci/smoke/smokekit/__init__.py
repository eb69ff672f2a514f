"""Helpers for the dbstack smoke suite: the environment contract, secret handling and ApeRAG-like shapes."""

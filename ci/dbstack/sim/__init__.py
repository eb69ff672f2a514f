"""Sim: a simulated KubeBlocks cluster that answers the plan's kubectl and helm commands in virtual time.

Used by tests and benchmarks to drive the real orchestrator. May import `run`, `plan`, `config` and the shared
helpers.
"""

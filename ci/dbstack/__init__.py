"""dbstack: ApeRAG's KubeBlocks databases on any Kubernetes, planned, deployed, smoke-tested and reported.

The packages follow the flow of data, each importing only the ones before it:

    config -> plan -> run -> report -> {sim, github} -> cli

`text` and `masking` are small helpers every package may use. The Dagger layer (`ci/pipeline.py`) sits on top
and nothing here imports it; tests/test_layout.py enforces the direction.
"""

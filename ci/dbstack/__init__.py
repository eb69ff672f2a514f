"""dbstack: ApeRAG's KubeBlocks databases on any Kubernetes, planned, deployed, smoke-tested and reported."""

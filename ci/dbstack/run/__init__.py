"""Run: a Plan executed against a cluster, producing Results.

Owns the Runner interface and its host (kubectl/helm on PATH) and container (Dagger) implementations, the
orchestrator, reading kubectl output, k3s, progress views, the Results model, and the smoke suite's environment
and outcome. May import `plan`, `config` and the shared helpers; never `report`, `sim`, `github` or `cli`.
"""

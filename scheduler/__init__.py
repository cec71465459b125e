"""tinykube scheduler: binds pending pods to nodes (kube-scheduler's queue, cache and plugin framework)."""

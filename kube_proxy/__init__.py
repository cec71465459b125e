"""kube_proxy package."""

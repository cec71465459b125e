"""A metrics-server: scrapes every kubelet's resource metrics and serves metrics.k8s.io/v1beta1."""

"""Cluster DNS: the add-on that answers `*.svc.cluster.local` per the Kubernetes DNS specification.

`zone` turns Services, EndpointSlices and Namespaces into answers (CoreDNS's kubernetes plugin
semantics), `wire` keeps those answers as ready wire messages, `forward` sends every other name to
the host's resolvers, `server` serves UDP and TCP, and `app` wires informers, the kube-dns Service
and the listeners into one process (`python -m cluster_dns`).
"""

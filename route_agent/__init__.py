"""The route agent: flannel's host-gw backend for nodes that are separate network namespaces (compose).

Each node runs one. It watches Nodes through the apiserver and keeps, for every other node with a
podCIDR and an InternalIP, a route `<podCIDR> via <InternalIP>` in its own namespace; routes of nodes
that are gone (or changed) are removed. Its routes carry their own protocol number, so a restarted
agent finds and reconciles what an earlier one left.
"""

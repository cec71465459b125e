"""kube-proxy in the userspace proxy mode: Services and EndpointSlices become asyncio TCP and UDP
listeners on ClusterIPs, NodePorts and LoadBalancer/external IPs, forwarding to endpoints.

Modules: `plan` (pure: objects → desired listeners), `balancer` (round-robin, ClientIP affinity),
`runner` (upstream's bounded-frequency runner), `proxier` (listeners made to match a plan), `tcp`
and `udp` (the data path), `health` and `metrics`, `server` (the process), `__main__` (flags).
"""

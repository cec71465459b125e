"""The kubelet: the node agent (`python -m kubelet`).

`node` builds and heartbeats the Node and its Lease, `kubelet.Kubelet` watches the pods bound to the
node and runs a `worker.PodWorker` per pod, which serializes the work of a `pod_sync.PodSync` (its
plan from `pod_actions.compute_pod_actions`) on a container runtime (`runtime` is the interface,
`process_runtime.ProcessRuntime` the local-process implementation, `docker_runtime.DockerRuntime`
real images through a Docker Engine); `image_pull` pulls images per policy; `status` computes pod status,
`probes` runs probes, `volumes`, `envvars`, `downward` and `expansion` prepare what a container sees.
"""

"""The kubelet: the node agent (`python -m kubelet`).

`node` builds and heartbeats the Node and its Lease, `kubelet.Kubelet` watches the pods bound to the
node and runs a `worker.PodWorker` per pod on a container runtime (`runtime` is the interface,
`process_runtime.ProcessRuntime` the local-process implementation); `status` computes pod status,
`probes` runs probes, `volumes`, `envvars`, `downward` and `expansion` prepare what a container sees.
"""

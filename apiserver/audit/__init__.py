"""Auditing (kube-apiserver's `--audit-policy-file` and `--audit-log-path`): the policy that says
what to record of each request, the log that records it, and the chain stage between them
(`apiserver.chain.audit`)."""

#!/usr/bin/env bash
# A compose node (installed in the image as tinykube-node): the route agent, kube-proxy and the kubelet,
# all on this container's own address. Pod IPs (the node's podCIDR) and Service IPs are local routes on
# lo, so pods and kube-proxy bind them; the route agent routes the other nodes' podCIDRs to them.
# $PKI (/pki) holds this node's own bundle (tinykube/compose.py), no key of the cluster's.
# Exits when any of the three does (the container then restarts); SIGTERM stops all three.
set -euo pipefail
: "${NODE_NAME:?}"
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/16}
CLUSTER_DNS=${CLUSTER_DNS:-10.96.0.10}
PKI=${PKI_DIR:-/pki}
node_ip=$(python3 -m tinykube.compose address)
# POD_CIDR unset: the one the controller-manager's nodeipam allocates from its --cluster-cidr
POD_CIDR=${POD_CIDR:-$(python3 -m tinykube.compose pod-cidr --kubeconfig "$PKI/kubelet.kubeconfig" --node-name "$NODE_NAME")}
ip route replace local "$POD_CIDR" dev lo
ip route replace local "$SERVICE_CIDR" dev lo
log_level=${LOG_LEVEL:-info}
tinykube-route-agent --kubeconfig "$PKI/kube-proxy.kubeconfig" --node-name "$NODE_NAME" \
  --log-level "$log_level" &
tinykube-kube-proxy --kubeconfig "$PKI/kube-proxy.kubeconfig" --node-name "$NODE_NAME" \
  --bind-address "$node_ip" --log-level "$log_level" &
tinykube-kubelet --kubeconfig "$PKI/kubelet.kubeconfig" --node-name "$NODE_NAME" \
  --node-ip "$node_ip" --pod-cidr "$POD_CIDR" --root-dir /var/lib/kubelet --cluster-dns "$CLUSTER_DNS" \
  --tls-cert-file "$PKI/kubelet.crt" --tls-private-key-file "$PKI/kubelet.key" \
  --client-ca-file "$PKI/ca.crt" --no-anonymous-auth --authentication-token-webhook \
  --authorization-mode Webhook --log-level "$log_level" &
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait' TERM INT
status=0
wait -n || status=$?
kill -TERM $(jobs -p) 2>/dev/null || true
wait || true
exit "$status"

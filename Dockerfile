# One image with every tinykube component and etcd (docker-compose.yml runs it as each service).
# Python packages come from wheels built on the host (scripts/compose-up.sh puts them in ./wheels):
# nothing is installed from a package index inside the build.
#   BASE=python:3.12-slim (default, where Docker Hub answers): what it lacks (iproute2, procps) from apt.
#   BASE=tinykube-base:bookworm (scripts/base-image.sh, no registry needed): has everything already.
# etcd: the base's, else the host's (compose-up.sh copies it into wheels/: Debian's needs only glibc),
# else Debian's etcd-server from apt.
ARG BASE=python:3.12-slim

# the venv in a stage of its own, so the wheels are not a layer of the image
FROM ${BASE} AS venv
COPY wheels /tmp/wheels
# kubernetes-validate ships schemas of every Kubernetes release (~110 MB): keep the one the apiserver serves
RUN python3 -m venv /opt/tinykube && \
    /opt/tinykube/bin/pip install -q --no-cache-dir --no-index --find-links /tmp/wheels tinykube && \
    keep=$(/opt/tinykube/bin/python -c 'from apiserver.openapi import _schema_dir; print(_schema_dir())') && \
    find "$(dirname "$keep")" -mindepth 1 -maxdepth 1 ! -path "$keep" -exec rm -rf {} + && \
    if ! command -v etcd >/dev/null && [ -x /tmp/wheels/etcd ]; then cp /tmp/wheels/etcd /opt/tinykube/bin/; fi

FROM ${BASE}
COPY --from=venv /opt/tinykube /opt/tinykube
RUN missing=""; \
    command -v etcd >/dev/null || [ -x /opt/tinykube/bin/etcd ] || missing="$missing etcd-server"; \
    command -v ip >/dev/null || missing="$missing iproute2"; \
    command -v ps >/dev/null || missing="$missing procps"; \
    if [ -n "$missing" ]; then \
      apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null && \
      rm -rf /var/lib/apt/lists/*; \
    fi
COPY scripts/compose-node.sh /usr/local/bin/tinykube-node
COPY scripts/compose-check.sh /usr/local/bin/tinykube-check
ENV PATH=/opt/tinykube/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
CMD ["tinykube", "--help"]

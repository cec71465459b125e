# One image with every tinykube component and etcd (docker-compose.yml runs it as each service).
# Python packages come from wheels built on the host (scripts/compose-up.sh puts them in ./wheels):
# nothing is installed from a package index inside the build.
#   BASE=python:3.12-slim (default, where Docker Hub answers): etcd and iproute2 from Debian's apt.
#   BASE=tinykube-base:bookworm (scripts/base-image.sh, no registry needed): has them already.
ARG BASE=python:3.12-slim
FROM ${BASE}
RUN if ! command -v etcd >/dev/null || ! command -v ip >/dev/null || ! command -v ps >/dev/null; then \
      apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server iproute2 procps \
        >/dev/null && \
      rm -rf /var/lib/apt/lists/*; \
    fi
COPY wheels /tmp/wheels
# kubernetes-validate ships schemas of every Kubernetes release (~110 MB): keep the one the apiserver serves
RUN python3 -m venv /opt/tinykube && \
    /opt/tinykube/bin/pip install -q --no-cache-dir --no-index --find-links /tmp/wheels tinykube && \
    rm -rf /tmp/wheels && \
    keep=$(/opt/tinykube/bin/python -c 'from apiserver.openapi import _schema_dir; print(_schema_dir())') && \
    find "$(dirname "$keep")" -mindepth 1 -maxdepth 1 ! -path "$keep" -exec rm -rf {} +
COPY scripts/compose-node.sh /usr/local/bin/tinykube-node
ENV PATH=/opt/tinykube/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
CMD ["tinykube", "--help"]

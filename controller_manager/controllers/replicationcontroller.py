"""The ReplicationController controller: the ReplicaSet controller with the v1 kind and its map selector
(as upstream, where pkg/controller/replication wraps the ReplicaSet manager)."""

from __future__ import annotations

from controller_manager.controllers import register
from controller_manager.controllers.replicaset import RC_KIND, OwnerKind, ReplicaSetController

__all__ = ["ReplicationControllerController"]


@register
class ReplicationControllerController(ReplicaSetController):
    """Keeps the number of active pods of each ReplicationController at spec.replicas."""

    name = "replicationcontroller"
    event_source = "replication-controller"
    owner_kind: OwnerKind = RC_KIND

"""tinykube's async API client: REST calls, watches, informers, work queues and leader election.

Layers, each usable alone: `config` (where the server is) → `request` (pure request building) →
`rest.ApiClient` (I/O with timeouts, retries, StatusError) → `watch` (typed event stream) →
`reflector` / `informer` (list+watch into an indexed Store, shared per collection) →
`workqueue` (client-go queue semantics) and `leaderelection` (Lease-based).
"""

from client.config import Config, ConfigError, load_config, load_kubeconfig
from client.informer import Handlers, Informer, InformerFactory
from client.leaderelection import LeaderElectionRecord, LeaderElector, LeaseLock, ResourceLock
from client.reflector import LISTED, reflect
from client.request import DeleteOptions, Obj, PatchType, Preconditions, Request, Selectors, resource
from client.rest import ApiClient, RetryPolicy
from client.store import Store, field_indexer, meta_key, namespace_indexer
from client.watch import EventType, WatchEvent, WatchExpired, watch
from client.workqueue import FakeClock, RealClock, ShutDown, WorkQueue

__all__ = [
    "LISTED",
    "ApiClient",
    "Config",
    "ConfigError",
    "DeleteOptions",
    "EventType",
    "FakeClock",
    "Handlers",
    "Informer",
    "InformerFactory",
    "LeaderElectionRecord",
    "LeaderElector",
    "LeaseLock",
    "Obj",
    "PatchType",
    "Preconditions",
    "RealClock",
    "Request",
    "ResourceLock",
    "RetryPolicy",
    "Selectors",
    "ShutDown",
    "Store",
    "WatchEvent",
    "WatchExpired",
    "WorkQueue",
    "field_indexer",
    "load_config",
    "load_kubeconfig",
    "meta_key",
    "namespace_indexer",
    "reflect",
    "resource",
    "watch",
]

"""tinykube's async API client: REST calls, watches, informers, work queues and leader election.

Layers, each usable alone: `config` (where the server is) → `request` (pure request building) →
`rest.ApiClient` (I/O with timeouts, retries, StatusError) → `watch` (typed event stream) →
`reflector` / `informer` (list+watch into an indexed Store, shared per collection) →
`workqueue` (client-go queue semantics) and `leaderelection` (Lease-based).
"""

from client.backoff import Backoff
from client.config import Config, ConfigError, load_config, load_kubeconfig
from client.informer import Handlers, Informer, InformerFactory
from client.leaderelection import LeaderElectionRecord, LeaderElector, LeaseLock, ResourceLock
from client.reflector import LISTED, Marker, reflect
from client.request import DeleteOptions, Obj, PatchType, Preconditions, Request, Selectors, resource
from client.rest import ApiClient, RetryPolicy
from client.store import Store, field_indexer, meta_key, namespace_indexer
from client.watch import EventType, WatchEvent, WatchExpired, watch
from client.workqueue import (
    BucketRateLimiter,
    DelayingQueue,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    Queue,
    RateLimiter,
    RealClock,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)

__all__ = [
    "LISTED",
    "ApiClient",
    "Backoff",
    "BucketRateLimiter",
    "Config",
    "ConfigError",
    "DelayingQueue",
    "DeleteOptions",
    "EventType",
    "FakeClock",
    "Handlers",
    "Informer",
    "InformerFactory",
    "ItemExponentialFailureRateLimiter",
    "LeaderElectionRecord",
    "LeaderElector",
    "LeaseLock",
    "Marker",
    "MaxOfRateLimiter",
    "Obj",
    "PatchType",
    "Preconditions",
    "Queue",
    "RateLimiter",
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
    "default_controller_rate_limiter",
    "field_indexer",
    "load_config",
    "load_kubeconfig",
    "meta_key",
    "namespace_indexer",
    "reflect",
    "resource",
    "watch",
]

"""The scheduler: informers feed the queue and the node-info cache; one loop decides, binds run concurrently.

Per pod (upstream scheduleOne): pop from the queue, run the framework over the cached nodes, assume
the pod on the chosen node, then bind it in the background (`pods/<name>/binding`) with a bounded
number of binds in flight. A pod no node fits gets PodScheduled=False/Unschedulable with upstream's
message and a FailedScheduling event, and waits in the queue for a cluster event.

Scheduling cycles and bindings in flight count as urgent work (`client.urgency.Urgency`): the Events
recorder holds its writes (a bounded time) while there is any, so in a burst the `Scheduled` Events trail
the bindings at the apiserver instead of taking turns with them (upstream's recorder is asynchronous too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import Counter as PromCounter

from apimachinery.errors import StatusError
from client.events import now_rfc3339
from client.events_v1 import EventsV1Recorder
from client.informer import Informer, InformerFactory
from client.request import DeleteOptions, PatchType, Preconditions
from client.rest import ApiClient
from client.urgency import Urgency
from scheduler.cache import Cache, node_taints
from scheduler.framework import FitError, Framework, Unschedulable
from scheduler.plugins import default_framework
from scheduler.podinfo import DEFAULT_SCHEDULER_NAME, PodInfo, pod_key
from scheduler.preemption import Budget, Candidate, Preemptor, node_without
from scheduler.queue import QueuedPod, SchedulingQueue

__all__ = ["Scheduler", "run_scheduler"]

log = logging.getLogger("scheduler")
Obj = dict[str, Any]

ATTEMPTS = PromCounter("scheduler_schedule_attempts_total", "Scheduling attempts by result.", ["result"])
_TERMINAL = ("Succeeded", "Failed")
_API_TIMEOUT = 10.0


def _ref(pod: PodInfo) -> Obj:
    """The pod object with kind/apiVersion set (list items come without them) for event references."""
    return {**pod.obj, "kind": "Pod", "apiVersion": "v1"}


def _scheduling_properties(node: Obj) -> tuple[Any, ...]:
    """What a node update must change to possibly help unschedulable pods (upstream nodeSchedulingPropertiesChange)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return (
        meta.get("labels"),
        bool(spec.get("unschedulable")),
        node_taints(node),
        status.get("allocatable") or status.get("capacity"),
    )


class Scheduler:
    """Schedules pods whose spec.schedulerName is `scheduler_name` onto nodes."""

    def __init__(
        self,
        api: ApiClient,
        factory: InformerFactory,
        recorder: EventsV1Recorder,
        scheduler_name: str = DEFAULT_SCHEDULER_NAME,
        *,
        framework: Framework | None = None,
        queue: SchedulingQueue | None = None,
        bind_concurrency: int = 16,
        urgency: Urgency | None = None,
    ) -> None:
        self.api = api
        self.recorder = recorder
        self.urgency = urgency or recorder.urgency or Urgency()
        self.scheduler_name = scheduler_name
        self.framework = framework or default_framework()
        self.queue = queue or SchedulingQueue()
        self.cache = Cache()
        self._slots = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.preemptor = Preemptor(self.framework)
        # pods that preempted others, by key: (node they wait for, the pod); the room they made is
        # theirs, so pods of no higher priority see them as already on that node
        self.nominated: dict[str, tuple[str, PodInfo]] = {}
        self.pods: Informer = factory.informer("pods")
        self.nodes: Informer = factory.informer("nodes")
        self.pdbs: Informer = factory.informer("poddisruptionbudgets")
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # --- informer handlers ---------------------------------------------------------------

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active_or_backoff()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.set_node(new)
        if _scheduling_properties(old) != _scheduling_properties(new):
            self.queue.move_all_to_active_or_backoff()

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node((node.get("metadata") or {}).get("name", ""))

    def _responsible(self, pod: Obj) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name

    def _pod_added(self, pod: Obj) -> None:
        self._pod_updated(None, pod)

    def _pod_updated(self, old: Obj | None, pod: Obj) -> None:
        key = pod_key(pod)
        spec = pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        if spec.get("nodeName"):
            self.nominated.pop(key, None)
            self.queue.delete(key)
            if phase in _TERMINAL:
                if self.cache.remove_pod(key):
                    self.queue.move_all_to_active_or_backoff()
            else:
                new = not self.cache.has_pod(key) or self.cache.is_assumed(key)
                self.cache.set_pod(PodInfo.of(pod, self.cache.pod_info(key)))
                if new:  # a pod newly on a node may satisfy pending pods' pod affinity
                    self.queue.move_pods_with_affinity()
            return
        if self.cache.is_assumed(key):
            return  # a stale pending version of a pod we have just bound
        gated = bool(spec.get("schedulingGates"))  # upstream SchedulingGates PreEnqueue: wait until removed
        if (pod.get("metadata") or {}).get("deletionTimestamp") or phase in _TERMINAL or gated:
            self.queue.delete(key)
            return
        if not self._responsible(pod):
            self.queue.delete(key)
            return
        self.queue.add(PodInfo.of(pod, self.queue.pod_info(key)))

    def _pod_deleted(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.nominated.pop(key, None)
        self.queue.delete(key)
        if self.cache.remove_pod(key):
            self.queue.move_all_to_active_or_backoff()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the caches, then schedule until cancelled."""
        await self.nodes.wait_for_sync()
        await self.pods.wait_for_sync()
        log.info("scheduler %s started", self.scheduler_name)
        try:
            while True:
                qp = await self.queue.pop()
                # urgent from the pop: `schedule_one` yields once after spawning the binding, whose task
                # then marks itself urgent before this cycle's mark goes, so the count stays up in a burst
                with self.urgency:
                    await self.schedule_one(qp)
        finally:
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def schedule_one(self, qp: QueuedPod) -> None:
        """One scheduling cycle for one pod."""
        await self._slots.acquire()  # bounds binds and status writes in flight
        pod = qp.pod  # the latest version: an update may have arrived while waiting
        released = False
        try:
            if pod.key not in self.queue:  # deleted or bound while waiting for a slot
                return
            nodes = self._with_nominated(pod, self.cache.node_list())
            try:
                node = self.framework.schedule(pod, nodes)
            except (FitError, Unschedulable) as e:
                ATTEMPTS.labels("unschedulable").inc()
                self.queue.requeue_unschedulable(qp)
                candidate = None
                if isinstance(e, FitError) and self.preemptor.eligible(pod, nodes):
                    candidate = self.preemptor.find(pod, nodes, e, self._budgets())
                if candidate is not None:
                    self.nominated[pod.key] = (candidate.node, pod)
                    self._spawn(self._preempt(pod, candidate, str(e)))
                else:
                    self._spawn(self._record_failure(pod, str(e)))
                released = True
                return
            except Exception:
                log.exception("scheduling %s failed", pod.key)
                ATTEMPTS.labels("error").inc()
                self.queue.requeue_backoff(qp)
                return
            ATTEMPTS.labels("scheduled").inc()
            self.cache.assume(pod, node)
            self.queue.done(pod.key)
            self._spawn(self._bind(qp, node))
            released = True
        finally:
            if not released:
                self._slots.release()
        # Let informer events and bind responses in between decisions.
        await asyncio.sleep(0)

    def _with_nominated(self, pod: PodInfo, nodes: list[Any]) -> list[Any]:
        """The nodes as this pod sees them: pods of no lower priority nominated to a node count as on it."""
        extra: dict[str, list[PodInfo]] = {}
        for key, (node, other) in self.nominated.items():
            if key != pod.key and other.priority >= pod.priority:
                extra.setdefault(node, []).append(other)
        if not extra:
            return nodes
        return [node_without(ni, set(), extra[ni.name]) if ni.name in extra else ni for ni in nodes]

    def _budgets(self) -> list[Budget]:
        return [b for pdb in self.pdbs.store.list() if (b := Budget.of(pdb)) is not None]

    async def _preempt(self, pod: PodInfo, cand: Candidate, message: str) -> None:
        """Nominate the node for the pod, evict the victims (DisruptionTarget condition, then delete,
        each with a Preempted event), then record the scheduling failure as for any unfit pod."""
        try:
            await asyncio.wait_for(
                self.api.patch(
                    "pods",
                    pod.name,
                    {"status": {"nominatedNodeName": cand.node}},
                    namespace=pod.namespace,
                    patch_type=PatchType.MERGE,
                    subresource="status",
                ),
                _API_TIMEOUT,
            )
            for victim in cand.victims:
                await self._evict(pod, victim, cand.node)
        except Exception as e:  # the next attempt preempts again if it must
            log.warning("preemption for %s on %s failed: %s", pod.key, cand.node, e)
        await self._record_failure(pod, message)

    async def _evict(self, pod: PodInfo, victim: PodInfo, node: str) -> None:
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": now_rfc3339(),
        }
        try:
            await asyncio.wait_for(
                self.api.patch(
                    "pods",
                    victim.name,
                    {"status": {"conditions": [condition]}},
                    namespace=victim.namespace,
                    patch_type=PatchType.STRATEGIC,
                    subresource="status",
                ),
                _API_TIMEOUT,
            )
            options = DeleteOptions(preconditions=Preconditions(uid=victim.uid))
            await asyncio.wait_for(
                self.api.delete("pods", victim.name, victim.namespace, options=options), _API_TIMEOUT
            )
        except StatusError as e:
            if e.code not in (404, 409):
                raise
            return  # already gone (or replaced by a namesake)
        note = f"Preempted by pod {pod.uid} on node {node}"
        self.recorder.record(_ref(victim), _ref(pod), "Normal", "Preempted", "Preempting", note)

    async def _bind(self, qp: QueuedPod, node: str) -> None:
        pod = qp.pod
        try:
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/binding"
            try:
                with self.urgency:
                    await self.api.request("POST", path, body=body, timeout=_API_TIMEOUT)
            except Exception as e:
                self.cache.forget(pod.key)
                self.queue.move_all_to_active_or_backoff()
                gone = isinstance(e, StatusError) and e.code in (404, 409)
                log.warning("binding %s to %s failed: %s", pod.key, node, e)
                if not gone and self.pods.store.get(pod.key) is not None:
                    self.queue.requeue_backoff(qp)
                    msg = f"binding rejected: {e}"
                    self.recorder.record(_ref(pod), None, "Warning", "FailedScheduling", "Scheduling", msg)
                return
            note = f"Successfully assigned {pod.namespace}/{pod.name} to {node}"
            self.recorder.record(_ref(pod), None, "Normal", "Scheduled", "Binding", note)
        finally:
            self._slots.release()

    async def _record_failure(self, pod: PodInfo, message: str) -> None:
        """PodScheduled=False/Unschedulable with `message` (written only when it changed) and a Warning event."""
        try:
            current = self.pods.store.get(pod.key)
            if current is None or pod.key not in self.queue:
                return  # deleted (or bound) meanwhile
            self.recorder.record(_ref(pod), None, "Warning", "FailedScheduling", "Scheduling", message)
            cond = next(
                (c for c in (current.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
                None,
            )
            if (
                cond is not None
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
                and cond.get("message") == message
            ):
                return
            transition = cond.get("lastTransitionTime") if cond and cond.get("status") == "False" else None
            patch = {
                "status": {
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": message,
                            "lastProbeTime": None,
                            "lastTransitionTime": transition or now_rfc3339(),
                        }
                    ]
                }
            }
            try:
                await asyncio.wait_for(
                    self.api.patch(
                        "pods",
                        pod.name,
                        patch,
                        namespace=pod.namespace,
                        patch_type=PatchType.STRATEGIC,
                        subresource="status",
                    ),
                    _API_TIMEOUT,
                )
            except Exception as e:  # best effort: the next attempt writes it again
                log.warning("could not update the status of %s: %s", pod.key, e)
        finally:
            self._slots.release()


async def run_scheduler(
    api: ApiClient,
    scheduler_name: str = DEFAULT_SCHEDULER_NAME,
    *,
    bind_concurrency: int = 16,
    percentage_of_nodes_to_score: int = 0,
) -> None:
    """Run a scheduler on `api` until cancelled (the component's main). `percentage_of_nodes_to_score`
    is upstream's KubeSchedulerConfiguration field: 0 is adaptive (50 % - nodes/125, at least 5 %)."""
    recorder = EventsV1Recorder(api, scheduler_name, queue_size=4096, urgency=Urgency())
    async with InformerFactory(api) as factory, recorder:
        sched = Scheduler(
            api,
            factory,
            recorder,
            scheduler_name,
            framework=default_framework(percentage_of_nodes_to_score),
            bind_concurrency=bind_concurrency,
        )
        factory.start()
        await sched.run()

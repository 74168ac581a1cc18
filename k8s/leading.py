"""The controller as one of several replicas: its loop acts only while its replica holds the Lease.

Why terms: each time the elector starts leading, a term begins and `RolloutController.run`
lists, watches and ticks until the term ends, when the lease is lost or the replica stops. A
replica that lost the lease stands by in the same process and may lead again later: a healthy
standby gives Kubernetes no reason to restart it. Ending a term sets its event and cuts the
loop's watch short (`RolloutController.interrupt`), so the loop returns at once, after the tick
under way. That tick writes nothing more once the lease is lost: the status store asks the
elector before each write (``may_act``), and the elector stops counting itself leader at its
renew deadline, before any standby may judge the lease expired.

Why stopping waits for the loop before handing the lease back: the last tick's decision is
written whole while this replica still holds the lease, and only then may a standby take over
(at its next attempt, not after the lease: the lease is handed back).

Threads: the elector's, the loop's, and the caller's, which only waits in `run`, so that `stop`
may be called from a signal handler: it sets events and shuts a socket, and the thread it
interrupts holds none of the locks it takes.
"""

from __future__ import annotations

import threading

from kubernetes.client import Configuration

from mlcanary.k8s.controller import RolloutController, user_agent
from mlcanary.k8s.controller_health import LoopProgress
from mlcanary.k8s.leader import LeaderElector, LeaseSettings

__all__ = ["LeadingController"]


class LeadingController:
    """Elects this replica among its peers and runs ``rollouts`` (`run`) while it leads.

    Build the `RolloutController` with ``may_act=leading.may_act``; ``progress`` is the one
    the health endpoints read, marked by each lease attempt while standing by."""

    def __init__(
        self, settings: LeaseSettings, configuration: Configuration, progress: LoopProgress
    ) -> None:
        self.elector = LeaderElector(
            settings,
            configuration,
            user_agent=user_agent(settings.identity),
            on_started_leading=self._begin_term,
            on_stopped_leading=self._end_term,
            on_candidate=progress.standing_by,
        )
        self._changed = threading.Condition()
        self._term: threading.Event | None = None  # set when the current term ends
        self._stopping = False
        self._rollouts: RolloutController | None = None
        self._failure: BaseException | None = None

    def may_act(self) -> bool:
        return self.elector.leading

    def run(self, rollouts: RolloutController) -> None:
        """Stand by or lead until `stop`; then hand the lease back. A failure of the loop
        is raised here, after the hand-back."""
        self._rollouts = rollouts
        loop = threading.Thread(target=self._serve, name="controller-loop")
        with self.elector:
            self.elector.start()
            loop.start()
            loop.join()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """End the term, let the tick under way finish, then hand the lease back; from any
        thread or a signal handler, any number of times."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._end_term()

    def _begin_term(self) -> None:
        with self._changed:
            if not self._stopping:
                self._term = threading.Event()
                self._changed.notify_all()

    def _end_term(self) -> None:
        with self._changed:
            term, self._term = self._term, None
        if term is not None:
            term.set()  # first: `interrupt` relies on it
            assert self._rollouts is not None
            self._rollouts.interrupt()

    def _serve(self) -> None:
        assert self._rollouts is not None
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._stopping or self._term is not None)
                    term = None if self._stopping else self._term
                if term is None:
                    return
                self._rollouts.run(term)
        except BaseException as exc:  # raised again by `run`, on the caller's thread
            self._failure = exc

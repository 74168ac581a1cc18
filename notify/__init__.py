"""Notification senders: webhook, Slack, Teams, behind the core's
`mlcanary.rollout.notifications.base.Notifier` port.

One module per target type, named in `mlcanary.rollout.notifications.registry`; `dispatcher`
sends from a bounded queue on a thread of its own per target, so that no target, however slow or
broken, holds up a controller's tick; `counts` keeps the controller's counters of how each
delivery ended.
"""

from mlcanary.single_name import refuse_bare_import

refuse_bare_import(__name__)

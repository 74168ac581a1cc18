"""The notification port: what the controller tells people about a rollout, and to whom.

The spec's targets (`spec`), the message and when one is due (`base.Notification`,
`base.notification_for`), the `base.Notifier` the controller calls once a decision is saved, its
test double (`memory`) and the registry of target types (`registry`). The senders themselves
(webhook, Slack, Teams) are the modules of `mlcanary.notify`; the cluster's Events are
`mlcanary.k8s.events`.
"""

"""Getting messages to LINE: the outbox (rows written in the cause's transaction), the sender
(claims with owner + lease, per-endpoint token buckets, retries with the same retry key),
the deliver tick (`worker.DeliveryWorker`) and rich-menu linking.

May import `bot.line` and storage; never the engine or the services.
"""

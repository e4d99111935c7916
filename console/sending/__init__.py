"""Sending: campaigns and their audience, the message ledger's states, the
queue (claims, answers, reports), the worker and its endpoint, inbound SMS
and STOP, the emergency alert, the live queue's read model, and providers/."""

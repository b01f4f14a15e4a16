"""Webhooks (SPEC section 11, the Standard Webhooks scheme).

* ``events``: the domain's signals → one outbox row per subscribed endpoint, in the
  transaction of the change, and the payloads;
* ``services``: endpoints (create, update, rotate the secret, test) and deliveries
  (attempt, send again, sweep);
* ``addresses``: the guard against private addresses (SSRF), at creation and at delivery;
* ``sender``: one signed POST, no redirects, a timeout, to the address that was checked;
* ``retry``: the backoff schedule (pure);
* ``tasks``: the worker's task and the beat sweeper.
"""

"""Delivery channels: one module per transport (webpush, email). They know how to reach a device
or an address and what its answer means; they never import the domain (make lint checks it)."""

"""Delivery channels: one module each (webpush, calendar) behind small, plain functions."""

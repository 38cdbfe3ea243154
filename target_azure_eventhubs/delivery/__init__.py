"""Delivery of events to Event Hubs."""

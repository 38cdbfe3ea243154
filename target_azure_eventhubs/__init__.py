"""Singer target that streams customer-profile segment-membership events into Azure Event Hubs."""

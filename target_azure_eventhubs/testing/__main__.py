"""`python -m target_azure_eventhubs.testing`: print the events an event hub holds."""

from target_azure_eventhubs.testing.readback import main

main()

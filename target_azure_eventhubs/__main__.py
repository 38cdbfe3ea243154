"""`python -m target_azure_eventhubs`: the same as the `target-azure-eventhubs` command."""

from target_azure_eventhubs.cli import main

main()

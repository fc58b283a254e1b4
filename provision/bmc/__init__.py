"""The BMC adapter: credentials, the Redfish client (the one place sushy is imported), the tree
reader, inventory normalisation, and the power and boot-override policies."""

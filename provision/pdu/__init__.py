"""PDUs over SNMP: the client (pysnmp, wrapped synchronous), each MIB family's OIDs and scaling, the
readings of inlets and outlets, and the burn-in's sampler of the outlet beside the BMC."""

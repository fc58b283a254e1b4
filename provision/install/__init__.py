"""The install chain: what one host's install is (spec), rendering its kickstart, iPXE script and
dnsmasq entries, and the token-gated boot server."""

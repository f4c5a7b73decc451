"""TAXII 2.1 server (OASIS TAXII Version 2.1, 10 June 2021)."""

"""The work: the ASIN service and the one module that talks to SP-API."""

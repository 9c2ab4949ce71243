"""The REST API face (DRF): root router, authentication, permissions and the OpenAPI schema."""

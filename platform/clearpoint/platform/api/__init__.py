"""The edge: the registry of services, the guard every call passes, reasons as gRPC statuses, the server."""

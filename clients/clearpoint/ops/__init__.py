"""`clearpoint ops`: the operators' command line, a gRPC client of the platform."""

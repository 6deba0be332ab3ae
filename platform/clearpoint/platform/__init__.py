"""The central Clearpoint platform: a grpc.aio service over SQLAlchemy storage."""

"""What every capability uses: database, time, ids, refusals, exactly-once, batching, paging.

Nothing here knows gRPC, protobuf or any capability: a clearing job or a web page can use it as it is.
"""

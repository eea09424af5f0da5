"""The descriptor pool that daneel's generated gRPC modules register their messages in.

Triton's and KServe's Python clients define the same `inference.*` messages in protobuf's
default pool; a pool of daneel's own lets both be imported in one process.
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()

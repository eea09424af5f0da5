"""Generated gRPC modules for the Open Inference Protocol and MLServer's model repository calls.

The .proto files beside them are the source; scripts/gen_protos.sh regenerates the modules.
"""

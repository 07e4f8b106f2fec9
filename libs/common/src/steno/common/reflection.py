"""gRPC server reflection under both of its names: ``grpc.reflection.v1``, which current
clients (grpcurl 1.8 and later, grpc's own tools) ask for first, and ``v1alpha``, which
older ones ask for.

grpcio-reflection ships only v1alpha. v1 is the same protocol, message for message and
field for field, in another package; so the v1 service is v1alpha's servicer behind v1's
name, and v1's file descriptor (which reflection serves to describe the service itself) is
v1alpha's with the package renamed.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, text_format
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
SERVICE_NAMES = (V1_SERVICE_NAME, reflection.SERVICE_NAME)


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serves reflection, v1 and v1alpha, listing ``service_names`` and itself."""
    v1_file()
    servicer = reflection.aio.ReflectionServicer([*service_names, *SERVICE_NAMES])
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    for name in SERVICE_NAMES:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(name, handlers)])


def v1_file() -> FileDescriptor:
    """``grpc/reflection/v1/reflection.proto`` in the default descriptor pool, added on the
    first call."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    v1alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(v1alpha)
    # Every reference to a type is by its full name, which the package begins.
    renamed = text_format.MessageToString(v1alpha).replace(V1ALPHA_PACKAGE, V1_PACKAGE)
    v1 = text_format.Parse(renamed, descriptor_pb2.FileDescriptorProto())
    v1.name = V1_FILE
    v1.ClearField("options")  # v1alpha's are its code generators' and say "deprecated"
    return pool.AddSerializedFile(v1.SerializeToString())

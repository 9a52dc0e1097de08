"""A HiveServer2 handshake without PyHive: open and close a session over Thrift (binary or HTTP,
SASL PLAIN or none), what the Spark compute's connection check does for `method: thrift|http`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from floe_dagster.core.errors import ComputeConfigurationError

__all__ = ["hiveserver2_handshake"]

if TYPE_CHECKING:
    from floe_dagster.computes.spark import SparkConfig

    pass

# Written when PyHive could not be installed here (dbt-spark's extra pins thrift<0.23); PyHive is
# now installed directly (pyproject.toml), but the check keeps its own few lines: the two calls
# a handshake needs are written with the thrift library's binary protocol, field ids as in Hive's
# TCLIService.thrift: OpenSession(TOpenSessionReq{1: client_protocol, 2: username, 3: password})
# -> TOpenSessionResp{1: TStatus{1: statusCode, 5: errorMessage}, 2: serverProtocolVersion,
# 3: TSessionHandle}, and CloseSession(TCloseSessionReq{1: TSessionHandle}).

HS2_PROTOCOL_V10 = 9  # TProtocolVersion.HIVE_CLI_SERVICE_PROTOCOL_V10, what PyHive asks for


HS2_STATUS_OK = (0, 1)  # SUCCESS_STATUS, SUCCESS_WITH_INFO_STATUS


SASL_START, SASL_OK, SASL_COMPLETE = 1, 2, 5  # Hive's TSaslTransport status bytes


def hiveserver2_handshake(config: SparkConfig) -> int:
    """Open and close a session on the Thrift server; returns the server's protocol version."""
    from thrift.transport import TSocket, TSSLSocket, TTransport

    host, port = str(config.host), config.effective_port
    if config.use_ssl:
        import ssl

        raw: Any = TSSLSocket.TSSLSocket(host=host, port=port, ssl_context=ssl.create_default_context())
    else:
        raw = TSocket.TSocket(host, port)
    raw.setTimeout(config.connect_timeout * 1000)
    transport = TTransport.TBufferedTransport(raw)
    transport.open()
    try:
        framed = config.auth != "NOSASL"
        if framed:  # NONE, LDAP and CUSTOM all speak SASL PLAIN (NONE: any password)
            user = config.user or "anonymous"
            password = config.password.get_secret_value() if config.password is not None else "x"
            _sasl_plain(transport, user, password)
        response = _hs2_call(transport, framed, "OpenSession", 1, _open_session_args(config))[0]
        status = response.get(1, {})
        if status.get(1) not in HS2_STATUS_OK:
            message = status.get(5, b"").decode("utf-8", "replace") or f"status code {status.get(1)}"
            raise ComputeConfigurationError(f"the server refused the session: {message}", provider="spark")
        handle = response.get(3)
        if handle is not None:
            _hs2_call(transport, framed, "CloseSession", 2, _close_session_args(handle))
        return int(response.get(2, 0))
    finally:
        transport.close()


def _sasl_plain(transport: Any, user: str, password: str) -> None:
    import struct

    def send(status: int, body: bytes) -> None:
        transport.write(struct.pack(">BI", status, len(body)) + body)
        transport.flush()

    send(SASL_START, b"PLAIN")
    send(SASL_OK, b"\0" + user.encode() + b"\0" + password.encode())
    status, length = struct.unpack(">BI", transport.readAll(5))
    body = transport.readAll(length).decode("utf-8", "replace")
    if status != SASL_COMPLETE:
        raise ComputeConfigurationError(
            f"SASL PLAIN login refused ({body or f'status {status}'}); check user / password / auth",
            provider="spark",
        )


def _open_session_args(config: SparkConfig) -> Any:
    from thrift.Thrift import TType

    def write(proto: Any) -> None:
        proto.writeStructBegin("OpenSession_args")
        proto.writeFieldBegin("req", TType.STRUCT, 1)
        proto.writeStructBegin("TOpenSessionReq")
        proto.writeFieldBegin("client_protocol", TType.I32, 1)
        proto.writeI32(HS2_PROTOCOL_V10)
        proto.writeFieldEnd()
        if config.user:
            proto.writeFieldBegin("username", TType.STRING, 2)
            proto.writeString(config.user)
            proto.writeFieldEnd()
        if config.password is not None:
            proto.writeFieldBegin("password", TType.STRING, 3)
            proto.writeString(config.password.get_secret_value())
            proto.writeFieldEnd()
        proto.writeFieldStop()
        proto.writeStructEnd()
        proto.writeFieldEnd()
        proto.writeFieldStop()
        proto.writeStructEnd()

    return write


def _close_session_args(handle: dict[int, Any]) -> Any:
    from thrift.Thrift import TType

    identifier = handle.get(1, {})

    def write(proto: Any) -> None:
        proto.writeStructBegin("CloseSession_args")
        proto.writeFieldBegin("req", TType.STRUCT, 1)
        proto.writeStructBegin("TCloseSessionReq")
        proto.writeFieldBegin("sessionHandle", TType.STRUCT, 1)
        proto.writeStructBegin("TSessionHandle")
        proto.writeFieldBegin("sessionId", TType.STRUCT, 1)
        proto.writeStructBegin("THandleIdentifier")
        for field_id, name in ((1, "guid"), (2, "secret")):
            proto.writeFieldBegin(name, TType.STRING, field_id)
            proto.writeBinary(identifier.get(field_id, b""))
            proto.writeFieldEnd()
        proto.writeFieldStop()
        proto.writeStructEnd()  # THandleIdentifier
        for _struct in ("TSessionHandle", "TCloseSessionReq", "CloseSession_args"):
            proto.writeFieldEnd()
            proto.writeFieldStop()
            proto.writeStructEnd()

    return write


def _hs2_call(transport: Any, framed: bool, method: str, seqid: int, write_args: Any) -> dict[int, Any]:
    """Send one call (Hive frames every message after SASL with a 4-byte length); return the
    result struct's fields by id."""
    import struct

    from thrift.protocol import TBinaryProtocol
    from thrift.Thrift import TApplicationException, TMessageType
    from thrift.transport import TTransport

    buffer = TTransport.TMemoryBuffer()
    proto = TBinaryProtocol.TBinaryProtocol(buffer)
    proto.writeMessageBegin(method, TMessageType.CALL, seqid)
    write_args(proto)
    proto.writeMessageEnd()
    payload = buffer.getvalue()
    transport.write(struct.pack(">I", len(payload)) + payload if framed else payload)
    transport.flush()
    if framed:
        (length,) = struct.unpack(">I", transport.readAll(4))
        reader = TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(transport.readAll(length)))
    else:
        reader = TBinaryProtocol.TBinaryProtocol(transport)
    _, kind, _ = reader.readMessageBegin()
    if kind == TMessageType.EXCEPTION:
        error = TApplicationException()
        error.read(reader)
        raise error
    result = _read_struct(reader)
    reader.readMessageEnd()
    return result


def _read_struct(proto: Any) -> dict[int, Any]:
    proto.readStructBegin()
    fields: dict[int, Any] = {}
    while True:
        _, ttype, field_id = proto.readFieldBegin()
        if ttype == 0:  # TType.STOP
            break
        fields[field_id] = _read_value(proto, ttype)
        proto.readFieldEnd()
    proto.readStructEnd()
    return fields


def _read_value(proto: Any, ttype: int) -> Any:
    from thrift.Thrift import TType

    readers = {
        TType.BOOL: proto.readBool,
        TType.BYTE: proto.readByte,
        TType.I16: proto.readI16,
        TType.I32: proto.readI32,
        TType.I64: proto.readI64,
        TType.DOUBLE: proto.readDouble,
        TType.STRING: proto.readBinary,
    }
    if ttype in readers:
        return readers[ttype]()
    if ttype == TType.STRUCT:
        return _read_struct(proto)
    if ttype in (TType.LIST, TType.SET):
        element, size = proto.readListBegin()
        values = [_read_value(proto, element) for _ in range(size)]
        proto.readListEnd()
        return values
    if ttype == TType.MAP:
        key_type, value_type, size = proto.readMapBegin()
        mapping = {_read_value(proto, key_type): _read_value(proto, value_type) for _ in range(size)}
        proto.readMapEnd()
        return mapping
    raise ValueError(f"unexpected thrift type {ttype} in a HiveServer2 answer")

_Bytes = bytes | bytearray | memoryview

def encode_chunk(
    data: _Bytes, fields: list[int], lengths: list[int], doc_base: int, start_doc: int, live: _Bytes | None,
    soft: _Bytes | None, id_num: int, uid_num: int, routing_num: int, source_num: int, prefix: _Bytes, /,
) -> tuple[bytes, bytes, bytes, int, int] | None: ...

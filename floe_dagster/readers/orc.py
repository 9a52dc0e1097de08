"""ORC tables on DuckDB: a PyArrow dataset over the table's files, registered on the connection.

DuckDB has no ORC reader; PyArrow has one. The view over an ORC table is a PyArrow
``FileSystemDataset`` handed to DuckDB, which pushes its projection and its filters into the
dataset scan, so only the columns a model selects are decoded and only the files whose partition
values can match a filter are opened:

* unpartitioned: every data file under the location (``_SUCCESS``, ``.crc`` and other hidden
  files skipped);
* partitioned, every partition (``scan.partitions is None``): Hive-style ``k=v`` folders under
  the location, typed from the partition spec;
* partitioned, listed partitions (wherever each one's registered location is): the files of
  each partition carry its values as a partition expression, so a filter on a partition column
  prunes whole partitions.

Columns are typed from the metastore's columns (``duckdb_scan.duckdb_type`` mapped to Arrow).
The S3 source reads ORC objects here too (``orc_schema`` from the file's tail, ``orc_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.table_model import Column, ScanDescription
from floe_dagster.readers.formats import FormatReader
from floe_dagster.readers.storage import filesystem, path_in_store

_ARROW_TYPES = {
    "VARCHAR": "string",
    "TINYINT": "int8",
    "SMALLINT": "int16",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "FLOAT": "float32",
    "DOUBLE": "float64",
    "BOOLEAN": "bool_",
    "DATE": "date32",
    "BLOB": "binary",
}
_HIVE_NAMES = {
    "string",
    "varchar",
    "char",
    "tinyint",
    "smallint",
    "int",
    "integer",
    "bigint",
    "float",
    "double",
    "double precision",
    "boolean",
    "date",
    "timestamp",
    "binary",
    "decimal",
}


def arrow_type(hive_type: str) -> Any:
    """The Arrow type for a Hive column type (complex types: None, i.e. as the file has it)."""
    import pyarrow as pa

    # lazy: the Hive -> DuckDB type mapping is duckdb_scan's, which imports the format registry
    from floe_dagster.readers.duckdb_scan import duckdb_type

    text = hive_type.strip().lower()
    if text.startswith(("array", "map", "struct", "uniontype")):
        return None
    if text.split("(", 1)[0].strip() not in _HIVE_NAMES:  # an Arrow type name (the S3 source's)
        try:
            return pa.type_for_alias(text)
        except (ValueError, KeyError):
            return None
    mapped = duckdb_type(hive_type)
    if mapped.startswith("DECIMAL("):
        precision, scale = mapped[len("DECIMAL(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    if mapped == "TIMESTAMP":
        return pa.timestamp("ns")
    return getattr(pa, _ARROW_TYPES.get(mapped, "string"))()


def _files(fs: Any, folder: str) -> list[str]:
    """Data files under ``folder`` (recursive): not ``_SUCCESS``, ``.crc``, ``_temporary/``, ...

    A ``folder`` that is a glob (the S3 source's ``prefix/*.orc``) gives the files of its folder
    that match it."""
    import fnmatch

    import pyarrow.fs as pafs

    if any(c in folder for c in "*?["):
        parent, pattern = folder.rsplit("/", 1)
        return [
            p
            for p in _files(fs, parent)
            if "/" not in p[len(parent) + 1 :] and fnmatch.fnmatch(p.rsplit("/", 1)[-1], pattern)
        ]

    infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    return sorted(
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and not any(s.startswith(("_", ".")) for s in i.path[len(folder) :].lstrip("/").split("/"))
    )


class OrcReader(FormatReader):
    name: ClassVar[str] = "orc"

    def arrow_dataset(self, scan: ScanDescription, storage: Mapping[str, str]) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        fs, root = filesystem(scan.location, storage, scan.table)
        file_schema = self._file_schema(scan, fs, root)
        keys = scan.partition_columns
        fields = [*file_schema, *(pa.field(c.name, arrow_type(c.type) or pa.string()) for c in keys)]
        schema = pa.schema(fields)
        fmt = ds.OrcFileFormat()
        if not keys:  # every glob of the table (the S3 source's tables may have more than one)
            folders = [root, *(path_in_store(more, scan.table) for more in scan.locations[1:])]
            files = sorted({path for folder in folders for path in _files(fs, folder)})
            return ds.FileSystemDataset.from_paths(files, schema=schema, format=fmt, filesystem=fs)
        if scan.partitions is None:
            partitioning = ds.partitioning(
                pa.schema([pa.field(c.name, arrow_type(c.type) or pa.string()) for c in keys]), flavor="hive"
            )
            return ds.dataset(
                _files(fs, root),
                schema=schema,
                format=fmt,
                filesystem=fs,
                partitioning=partitioning,
                partition_base_dir=root,
            )
        paths: list[str] = []
        expressions: list[Any] = []
        for partition in scan.partitions:
            location = (
                partition.location or f"{scan.location.rstrip('/')}/{partition.name([c.name for c in keys])}"
            )
            folder = path_in_store(location, scan.table)
            expression = pc.scalar(True)
            for column, value in partition.pairs(keys):
                typed = arrow_type(column.type) or pa.string()
                expression = expression & (pc.field(column.name) == pa.scalar(value).cast(typed))
            for path in _files(fs, folder):
                paths.append(path)
                expressions.append(expression)
        return ds.FileSystemDataset.from_paths(
            paths, schema=schema, format=fmt, filesystem=fs, partitions=expressions
        )

    def _file_schema(self, scan: ScanDescription, fs: Any, root: str) -> list[Any]:
        """The columns as the metastore declares them; a declared complex type as the files have it."""
        import pyarrow as pa

        declared: list[tuple[Column, Any]] = [(c, arrow_type(c.type)) for c in scan.columns]
        if declared and all(t is not None for _, t in declared):
            return [pa.field(c.name, t) for c, t in declared]
        files = _files(fs, root)
        if not files:
            if not declared:
                raise NotSupportedError(
                    f"table {scan.table}: an ORC table with no declared columns and no file to read"
                    " them from; declare its columns in the metastore",
                    provider="duckdb",
                    operation="read_orc",
                    retryable=False,
                )
            return [pa.field(c.name, t or pa.string()) for c, t in declared]
        import pyarrow.orc as orc

        with fs.open_input_file(files[0]) as handle:
            found = orc.ORCFile(handle).schema
        if not declared:
            return list(found)
        return [pa.field(c.name, t if t is not None else found.field(c.name).type) for c, t in declared]


def orc_schema(size: int, read_range: Callable[[int, int], bytes]) -> tuple[Any, int]:
    """(Arrow schema, row count) of an ORC object from its tail, fetched with ranged reads."""
    import pyarrow as pa
    import pyarrow.orc as orc

    handle = _RangedFile(size, read_range)
    reader = orc.ORCFile(pa.PythonFile(handle, mode="r"))
    return reader.schema, int(reader.nrows)


def orc_batches(data: bytes, rows: int) -> tuple[Any, int, Callable[[], Iterator[Any]]]:
    """(schema, row count, batches of ``rows`` rows) of one downloaded ORC object."""
    import pyarrow as pa
    import pyarrow.orc as orc

    reader = orc.ORCFile(pa.BufferReader(data))

    def batches() -> Iterator[Any]:
        for stripe in range(reader.nstripes):
            yield from pa.Table.from_batches([reader.read_stripe(stripe)]).to_batches(max_chunksize=rows)

    return reader.schema, int(reader.nrows), batches


class _RangedFile:
    """A read-only file over ranged reads, the tail cached (ORC's footer is read from the end)."""

    TAIL = 64 * 1024

    def __init__(self, size: int, read_range: Callable[[int, int], bytes]) -> None:
        self.size, self._read_range, self._pos = size, read_range, 0
        start = max(0, size - self.TAIL)
        self._tail_start, self._tail = start, read_range(start, size - 1) if size else b""
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        if self._pos >= self._tail_start:
            data = self._tail[self._pos - self._tail_start : end - self._tail_start]
        elif end > self._pos:
            data = self._read_range(self._pos, end - 1)
        else:
            data = b""
        self._pos = end
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = {0: offset, 1: self._pos + offset, 2: self.size + offset}[whence]
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


READER = OrcReader()

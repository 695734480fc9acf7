"""Small query-building helpers shared by the repositories."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection


def one_of(conn: AsyncConnection, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values`` that stays one parameter on PostgreSQL.

    An IN list of thousands of parameters is a different prepared statement for every length
    and, once PostgreSQL settles on a generic plan for it, can turn an index look-up into a
    scan of the whole table; ``= ANY($1)`` keeps one statement and the index.
    """
    if conn.dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return column == func.any(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]

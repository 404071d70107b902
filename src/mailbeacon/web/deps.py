"""The one way a route reaches its node: ``node: NodeDep`` in its signature.

``build()`` (web/app.py) puts the node on ``app.state``; routes are
module-level routers (``router = APIRouter()``), so nothing closes over a
node and a test can build an app around any node. Dependencies that take
only the request add nothing to the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mailbeacon.node import Node


def get_node(request: Request) -> Node:
    """The node, for code that has the request in hand (other dependencies)."""
    node: Node = request.app.state.node
    return node


async def _node(request: Request) -> Node:
    # async: FastAPI runs a plain-def dependency in its thread pool, a hop per
    # request for a field read.
    return get_node(request)


NodeDep = Annotated[Node, Depends(_node)]

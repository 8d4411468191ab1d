"""Moving native positions between registers and arrays, for the numba engines.

A native kernel's position is an immutable value, a tuple of ``STATE_LEN`` int64 (see
``plyground.games.native``).  The engines keep the node they work on in local variables and
write positions into array rows only to come back to them (a frame of the alpha-beta stack, a
leaf of an MCTS batch).  These helpers are generic over the tuple's length, which numba knows at
compile time; they allocate nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def load_state(typingctx, like, arr, row):
    """The position stored in ``arr[row, :len(like)]`` (``arr[row:row + len(like)]`` if ``arr``
    is 1-D: ``row`` is then an element offset), as a tuple of ``like``'s type."""
    sig = like(like, arr, row)

    def codegen(context, builder, signature, args):
        tupty, arrty, _ = signature.args
        ary = context.make_array(arrty)(context, builder, args[1])
        shape = cgutils.unpack_tuple(builder, ary.shape)
        strides = cgutils.unpack_tuple(builder, ary.strides)
        offset = context.cast(builder, args[2], signature.args[2], types.intp)
        vals = []
        for j in range(tupty.count):
            col = context.get_constant(types.intp, j)
            inds = [args[2], col] if arrty.ndim == 2 else [builder.add(offset, col)]
            ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides, arrty.layout, inds)
            vals.append(builder.load(ptr))
        return context.make_tuple(builder, tupty, vals)

    return sig, codegen


@njit(cache=True, inline="always", _nrt=False)
def store_state(arr, row, s):
    """Write the position ``s`` into ``arr[row, :len(s)]``."""
    for j in range(len(s)):
        arr[row, j] = s[j]


@njit(cache=True, inline="always", _nrt=False)
def store_state_at(arr, off, s):
    """Write the position ``s`` into the 1-D ``arr[off:off + len(s)]`` (unsigned indices: no
    negative-index wraparound code; ``off`` must be in range)."""
    for j in range(len(s)):
        arr[np.uint64(off + j)] = s[j]


@intrinsic
def row_view(typingctx, arr, off, n):
    """``arr[off:off + n]`` of a 1-D contiguous array, without a slice's sign and bound fix-ups
    (the caller guarantees the range): a view holding no reference of its own, for the engines'
    NRT-free code."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
        return None  # (a typing error: only 1-D contiguous arrays)
    sig = arr(arr, off, n)

    def codegen(context, builder, signature, args):
        aryty, offty, nty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        out = context.make_array(aryty)(context, builder)
        start = context.cast(builder, args[1], offty, types.intp)
        length = context.cast(builder, args[2], nty, types.intp)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
            context.get_data_type(aryty.dtype)))
        context.populate_array(out, data=builder.gep(ary.data, [start]),
                               shape=cgutils.pack_array(builder, [length]),
                               strides=cgutils.pack_array(builder, [itemsize]),
                               itemsize=ary.itemsize, meminfo=None, parent=None)
        return out._getvalue()

    return sig, codegen

"""Moving native positions between registers and arrays, for the numba engines.

A native kernel's position is an immutable value, a tuple of ``STATE_LEN`` int64 (see
``plyground.games.native``).  The engines keep the node they work on in local variables and
write positions into array rows only to come back to them (a frame of the alpha-beta stack, a
leaf of an MCTS batch).  These helpers are generic over the tuple's length, which numba knows at
compile time; they allocate nothing.
"""

from __future__ import annotations

from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def load_state(typingctx, like, arr, row):
    """The position stored in ``arr[row, :len(like)]`` (``arr[:len(like)]`` if ``arr`` is 1-D;
    ``row`` is then ignored), as a tuple of ``like``'s type."""
    sig = like(like, arr, row)

    def codegen(context, builder, signature, args):
        tupty, arrty, _ = signature.args
        ary = context.make_array(arrty)(context, builder, args[1])
        shape = cgutils.unpack_tuple(builder, ary.shape)
        strides = cgutils.unpack_tuple(builder, ary.strides)
        vals = []
        for j in range(tupty.count):
            col = context.get_constant(types.intp, j)
            inds = [args[2], col] if arrty.ndim == 2 else [col]
            ptr = cgutils.get_item_pointer2(context, builder, ary.data, shape, strides, arrty.layout, inds)
            vals.append(builder.load(ptr))
        return context.make_tuple(builder, tupty, vals)

    return sig, codegen


@njit(cache=True, inline="always", _nrt=False)
def store_state(arr, row, s):
    """Write the position ``s`` into ``arr[row, :len(s)]``."""
    for j in range(len(s)):
        arr[row, j] = s[j]

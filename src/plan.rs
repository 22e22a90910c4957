//! Compares what `render` would write with what `out/<env>/` holds.

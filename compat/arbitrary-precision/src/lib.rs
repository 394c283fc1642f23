//! Nothing here: the tests build the toolkit with `serde_json`'s
//! `arbitrary_precision` feature on (see `tests/`).

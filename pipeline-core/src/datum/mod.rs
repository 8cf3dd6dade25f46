//! Inputs → datums.

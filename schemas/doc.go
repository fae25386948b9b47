// Package schemas defines the messages of every topic the pipeline reads or
// writes (SPEC section 2), decodes and validates input messages with errors
// that name the offending field, and holds the JSON Schema documents and the
// ClickHouse DDL that describe the same shapes to other teams.
//
// It does no I/O: consumers hand it bytes and get back a typed event or a
// *FieldError saying what was wrong.
package schemas

// Package analysis turns an API description into what the gateway proposes:
// operations, the auth each one needs, and MCP tools whose inputs carry
// business fields only.
//
// The package performs no I/O: Analyze takes the document's bytes and returns
// a Result; NewDocument maps it to the review document that `mcpgw inspect -o json`
// prints and the operator API returns for an import.
// External $refs are never fetched here: they resolve only from documents the
// caller fetched and passed in Options.External, and are refused otherwise.
// It is shared by the importer service and the offline inspect command, so it
// has no dependency on the bus, storage or logging.
//
// Scope: OpenAPI 3.0, 3.1 and 3.2 (as far as kin-openapi reads 3.2) and
// Swagger 2.0 (converted to the OpenAPI 3 model after normalising what
// kin-openapi cannot decode), in JSON or YAML, and Postman Collection v2.0
// and v2.1. Other formats (Postman 1.0, AsyncAPI, later OpenAPI versions)
// are detected and refused with an *UnsupportedFormatError naming the format.
//
// Guarantees:
//   - Analyze never panics, whatever the input (a fuzz target holds it to that).
//   - Malformed input is refused with a typed error carrying a location: a
//     line and column for JSON or YAML syntax, a JSON pointer (and a line where
//     one is known) otherwise.
//   - Input is bounded: document size, nesting depth, YAML alias expansion;
//     recursive schemas become $defs references, never infinite expansion.
//   - Findings of the OpenAPI validator become warnings in Diagnostics; they
//     never refuse a document.
//   - Every auth requirement is caller-hidden (CallerVisible is false), and no
//     parameter that carries a credential, declared or inferred, appears in a
//     tool's input schema.
//   - The result is deterministic: the same bytes give the same result, byte
//     for byte once encoded, and an operation keeps its tool name across
//     re-imports as long as the operations it collides with do not change.
package analysis

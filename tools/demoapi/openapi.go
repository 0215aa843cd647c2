package demoapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
)

//go:embed openapi.yaml
var openAPITemplate []byte

// serverURLToken marks where OpenAPI puts the server URL in the template.
const serverURLToken = "__SERVER_URL__"

// OpenAPI returns the OpenAPI 3.0.3 description of this API, in YAML, with
// serverURL as its only server. serverURL is written as a quoted YAML string,
// so any value yields a valid document.
func OpenAPI(serverURL string) []byte {
	quoted, _ := json.Marshal(serverURL) // a JSON string is a valid YAML double-quoted scalar; marshalling a string cannot fail
	return bytes.ReplaceAll(openAPITemplate, []byte(serverURLToken), quoted)
}
